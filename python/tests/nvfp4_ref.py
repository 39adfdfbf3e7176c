"""An independent numpy model of NVFP4 (docs/format.md) for the tests: decode tables, the
FlashInfer quantization recipe (float32 steps, round to nearest even), the 128x4 swizzle."""
import numpy as np

E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], np.float64)


def e4m3_table():
    v = np.zeros(128)
    for c in range(128):
        e, m = c >> 3, c & 7
        v[c] = (m / 8) * 2.0 ** -6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
    v[127] = np.nan  # 0x7F is NaN in e4m3fn
    return v


E4M3 = e4m3_table()


def _round_grid(x, grid):
    """Codes of |x| (float64, >= 0) rounded to nearest on an increasing grid, ties to the even
    code, saturating at the top."""
    hi = np.searchsorted(grid, x, side="left")  # grid[hi-1] < x <= grid[hi]
    hi = np.clip(hi, 1, len(grid) - 1)
    lo = hi - 1
    dlo, dhi = x - grid[lo], grid[hi] - x
    pick_hi = (dhi < dlo) | ((dhi == dlo) & (hi % 2 == 0))
    code = np.where(pick_hi, hi, lo)
    code = np.where(x >= grid[-1], len(grid) - 1, code)
    return np.where(x <= 0, 0, code)


def e4m3_code(x):
    return _round_grid(np.asarray(x, np.float64), E4M3[:127]).astype(np.uint8)


def quantize(x, gs):
    """FlashInfer recipe: (q [M, K/2] uint8, linear scales [M, K/16] uint8)."""
    x = np.asarray(x, np.float32)
    m, k = x.shape
    blk = x.reshape(m, k // 16, 16)
    vmax = np.abs(blk).max(axis=2).astype(np.float32)
    gs = np.float32(gs)
    sfv = vmax * (gs * np.float32(1.0 / 6.0))
    sfc = np.where(vmax == 0, 0, e4m3_code(sfv)).astype(np.uint8)
    sff = E4M3[sfc].astype(np.float32)
    with np.errstate(divide="ignore", over="ignore"):
        osc = np.float32(1.0) / (sff * (np.float32(1.0) / gs))
    osc = np.where(vmax == 0, np.float32(0), np.minimum(osc, np.float32(np.finfo(np.float32).max)))
    y = (blk * osc[:, :, None].astype(np.float32)).astype(np.float32)
    code = _round_grid(np.abs(y).astype(np.float64), E2M1).astype(np.uint8)
    code |= np.signbit(y).astype(np.uint8) << 3
    code = code.reshape(m, k)
    q = (code[:, 0::2] | (code[:, 1::2] << 4)).astype(np.uint8)
    return q, sfc


def swizzle_offset(r, kb, k):
    kt = ((k // 16) + 3) // 4
    return (r // 128) * (kt * 512) + (kb // 4) * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + kb % 4


def to_swizzled(sf_lin, k):
    m, kb = sf_lin.shape
    out = np.zeros(((m + 127) // 128 * 128) * ((kb + 3) // 4 * 4), np.uint8)
    r, c = np.meshgrid(np.arange(m), np.arange(kb), indexing="ij")
    out[swizzle_offset(r, c, k)] = sf_lin
    return out


def dequantize(q, sf_lin, gs=1.0):
    """float64 [M, K] = e2m1 * e4m3 / gs from packed q and linear scales."""
    m, kh = q.shape
    codes = np.empty((m, 2 * kh), np.uint8)
    codes[:, 0::2], codes[:, 1::2] = q & 15, q >> 4
    v = E2M1[codes & 7] * np.where(codes & 8, -1.0, 1.0)
    s = np.repeat(E4M3[sf_lin], 16, axis=1)
    return v * s / float(np.float32(gs))


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """Round to nearest even (finite inputs)."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)
