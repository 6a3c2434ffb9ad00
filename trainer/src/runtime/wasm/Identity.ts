// Identity and same-dtype Cast for the wasm backend, sharing one implementation. The engine clones every tensor it
// saves for the backward pass, and the wasm backend's Identity copies the data (a tenth of a MobileNetV2 training
// step); the cpu backend shares it under a reference count instead, as here. Sharing is safe because no wasm
// kernel writes into its inputs. Strings, and casts to another dtype, go to the backend's kernels.
import { builtinKernel, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';

function share(b: WasmBackend, x: Info): Info {
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function sharedIdentity(args: KernelArgs): Info {
  const { x } = args.inputs as { x: Info };
  return x.dtype === 'string' ? builtinKernel('Identity')(args) : share(args.backend as WasmBackend, x);
}

// Cast to the dtype a tensor already has (tfjs' own ReLU gradient and layers do it): shared, like Identity.
function sharedCast(args: KernelArgs): Info {
  const { x } = args.inputs as { x: Info };
  const same = x.dtype !== 'string' && (args.attrs as { dtype: string }).dtype === x.dtype;
  return same ? share(args.backend as WasmBackend, x) : builtinKernel('Cast')(args);
}

export const identityConfig = wasmKernel('Identity', sharedIdentity, { wrapsBuiltin: true });
export const castConfig = wasmKernel('Cast', sharedCast, { wrapsBuiltin: true });
