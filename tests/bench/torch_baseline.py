"""PyTorch CPU baseline for the trainer benchmark: MobileNetV2 forward and training-step cost.

Same setting as the tfjs side: random init, 2 classes, softmax cross-entropy, plain SGD over every parameter,
BatchNorm with frozen statistics and no dropout (model.eval(), gradients on). Prints one JSON line.
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torchvision


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--alpha", type=float, required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(width_mult=a.alpha, num_classes=2)
    model.eval()  # BatchNorm on running statistics, dropout off: what the tfjs fine-tuning does
    x = torch.rand(a.batch, 3, a.size, a.size) * 2 - 1
    y = torch.arange(a.batch) % 2
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def train() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def per_image_ms(f, n: int) -> float:
        # The median of n timed calls after a warm-up, as trainer-case.ts times the tfjs side: one call slowed by
        # the virtual machine's neighbours moves a mean, not a median.
        f()  # warm-up
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000 / a.batch

    fwd = per_image_ms(forward, a.iters + 1)
    trn = per_image_ms(train, a.iters)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"ok": True, "forwardMsPerImg": fwd, "trainMsPerImg": trn, "rssMB": rss_mb,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
