"""PyTorch side of the trainer benchmark's matrix-multiply ceiling (gemm-case.ts): single-thread float32 GEMM
throughput on the same shapes. Prints one JSON line."""
import json
import sys
import time

import torch


def main() -> None:
    shapes = json.loads(sys.argv[1])
    torch.set_num_threads(1)
    out = []
    for m, k, n in shapes:
        g = torch.Generator().manual_seed(1)
        a = torch.rand(m, k, generator=g) * 2 - 1
        b = torch.rand(k, n, generator=g) * 2 - 1
        a @ b  # warm-up
        reps = max(3, min(50, round(2.5e9 / (2 * m * k * n))))
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        ms = (time.perf_counter() - t0) * 1000 / reps
        out.append({"m": m, "k": k, "n": n, "ms": ms, "gflops": 2 * m * k * n / ms / 1e6})
    print(json.dumps({"ok": True, "torch": torch.__version__, "results": out}))


if __name__ == "__main__":
    main()
