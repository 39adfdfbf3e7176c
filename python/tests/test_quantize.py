"""fp4_quantize, dequantize, global_scale and sf_convert against the numpy model (nvfp4_ref)."""
import numpy as np
import pytest

import fp4gemm
import nvfp4_ref as ref

SHAPES = [(1, 16), (3, 48), (5, 64), (130, 80), (257, 256)]


def data(m, k, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)).astype(np.float32) * np.float32(rng.uniform(0.01, 100))
    x[0, :16] = 0  # a zero block
    return x


@pytest.mark.parametrize("m,k", SHAPES)
def test_quantize_bytes_equal_the_model(m, k):
    x = data(m, k, m * 1000 + k)
    gs = fp4gemm.global_scale(x)
    assert gs.dtype == np.float32 and gs.shape == (1,)
    amax = np.abs(x).max()
    np.testing.assert_equal(gs[0], np.float32(448 * 6) / amax if amax > 0 else 1.0)  # all-zero: 1
    q_ref, sf_ref = ref.quantize(x, gs[0])
    q, sf = fp4gemm.fp4_quantize(x, gs, is_sf_swizzled_layout=False)
    assert q.shape == (m, k // 2) and q.dtype == np.uint8 and sf.shape == (m, k // 16)
    np.testing.assert_array_equal(q, q_ref)
    np.testing.assert_array_equal(sf, sf_ref)
    q2, sfs = fp4gemm.fp4_quantize(x, gs)  # FlashInfer's default: swizzled
    np.testing.assert_array_equal(q2, q_ref)
    assert sfs.shape == ((m + 127) // 128 * 128, (k // 16 + 3) // 4 * 4)
    np.testing.assert_array_equal(sfs.reshape(-1), ref.to_swizzled(sf_ref, k))


def test_known_values():
    # one block: amax 6 with gs 448 -> block scale e4m3(448) = 0x7E, out scale 1/ (448/448) = 1
    x = np.array([[6, -6, 0.5, -0.25, 1, 1.5, 2, 3, 4, -4, 0, -0.0, 5, 2.5, 0.75, 1.25]], np.float32)
    q, sf = fp4gemm.fp4_quantize(x, np.float32(448.0), is_sf_swizzled_layout=False)
    assert sf.tolist() == [[0x7E]]
    # codes: 6->7, -6->15, .5->1, -.25->8 (tie to even 0, sign kept), 1->2, 1.5->3, 2->4, 3->5,
    # 4->6, -4->14, 0->0, -0->8, 5->6 (tie to even), 2.5->4 (tie), .75->2 (tie), 1.25->2 (tie)
    codes = [7, 15, 1, 8, 2, 3, 4, 5, 6, 14, 0, 8, 6, 4, 2, 2]
    assert q.tolist() == [[codes[i] | codes[i + 1] << 4 for i in range(0, 16, 2)]]


@pytest.mark.parametrize("dt", [np.float16, "bf16bits"])
def test_half_inputs(dt):
    x = data(9, 96, 7)
    if dt == "bf16bits":
        xin = ref.f32_to_bf16_bits(x)
        xf = ref.bf16_bits_to_f32(xin)
        q, sf = fp4gemm.fp4_quantize(xin, 3.0, is_sf_swizzled_layout=False, dtype="bfloat16")
    else:
        xin = x.astype(np.float16)
        xf = xin.astype(np.float32)
        q, sf = fp4gemm.fp4_quantize(xin, 3.0, is_sf_swizzled_layout=False)
    q_ref, sf_ref = ref.quantize(xf, 3.0)
    np.testing.assert_array_equal(q, q_ref)
    np.testing.assert_array_equal(sf, sf_ref)


def test_row_stride_view():
    big = data(6, 128, 3)
    view = big[:, :64]  # rows of 64 elements, 128 apart
    q, sf = fp4gemm.fp4_quantize(view, 10.0, is_sf_swizzled_layout=False)
    q_ref, sf_ref = ref.quantize(np.ascontiguousarray(view), 10.0)
    np.testing.assert_array_equal(q, q_ref)
    np.testing.assert_array_equal(sf, sf_ref)


@pytest.mark.parametrize("swz", [True, False])
def test_dequantize_and_sf_convert(swz):
    m, k = 70, 112
    x = data(m, k, 11)
    gs = fp4gemm.global_scale(x)
    q, sf = fp4gemm.fp4_quantize(x, gs, is_sf_swizzled_layout=swz)
    lin = sf if not swz else fp4gemm.sf_convert(sf, m, k, src="swizzled", dst="linear")
    assert lin.shape == (m, k // 16)
    want = ref.dequantize(q, lin, gs[0])
    got = fp4gemm.dequantize(q, sf, gs, is_sf_swizzled_layout=swz)
    assert got.dtype == np.float32 and got.shape == (m, k)
    np.testing.assert_array_equal(got, want.astype(np.float32))
    back = fp4gemm.sf_convert(lin, m, k, src="linear", dst="swizzled")
    np.testing.assert_array_equal(back.reshape(-1), ref.to_swizzled(lin, k))


def test_bad_input_raises_clearly():
    x = data(4, 32, 1)
    with pytest.raises(NotImplementedError, match="NVFP4"):
        fp4gemm.fp4_quantize(x, 1.0, sf_use_ue8m0=True)
    with pytest.raises(NotImplementedError):
        fp4gemm.fp4_quantize(x, 1.0, sf_vec_size=32)
    with pytest.raises(ValueError, match="multiple of 16"):
        fp4gemm.fp4_quantize(x[:, :24], 1.0)
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        fp4gemm.fp4_quantize(x.astype(np.int32), 1.0)
    with pytest.raises(TypeError, match="uint16"):
        fp4gemm.fp4_quantize(x.view(np.uint16), 1.0)
    with pytest.raises(ValueError, match="contiguous"):
        fp4gemm.fp4_quantize(np.asfortranarray(x), 1.0)
    with pytest.raises(ValueError, match="2-D"):
        fp4gemm.fp4_quantize(x.reshape(-1), 1.0)
    with pytest.raises(fp4gemm.Fp4GemmError, match="global"):
        fp4gemm.fp4_quantize(x, -1.0)  # the library's check, its message
    with pytest.raises(TypeError):
        fp4gemm.fp4_quantize([[1.0] * 16], 1.0)
