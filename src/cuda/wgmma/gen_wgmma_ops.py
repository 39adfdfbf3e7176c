#!/usr/bin/env python3
"""Writes wgmma_ops.cuh: the inline-PTX wrappers of wgmma.mma_async m64nNk16 with A in registers
(the RS form) for the N the cuda_wgmma configs use. PTX needs every accumulator register named in
the instruction, so these are spelled out; rerun after changing NS:
    python3 src/cuda/wgmma/gen_wgmma_ops.py > src/cuda/wgmma/wgmma_ops.cuh
"""
NS = (64, 128, 256)

print("""/* wgmma_ops.cuh - written by gen_wgmma_ops.py (do not edit): wgmma.mma_async.m64nNk16 with
 * the A operand in registers (RS form), F32 accumulators, FP16 or BF16 inputs, B K-major in
 * shared memory through a descriptor; D += A B always (scale-d = 1). sm_90a only. */
#ifndef FP4_WGMMA_OPS_CUH
#define FP4_WGMMA_OPS_CUH
#include <stdint.h>
""")
for n in NS:
    nacc = n // 2
    for t in ("f16", "bf16"):
        acc = ", ".join(f"%{i}" for i in range(nacc))
        a = ", ".join(f"%{nacc + i}" for i in range(4))
        outs = ", ".join(f'"+f"(d[{i}])' for i in range(nacc))
        print(f"__device__ __forceinline__ void wgmma_m64n{n}k16_{t}_rs(float (&d)[{nacc}], "
              f"const uint32_t (&a)[4], uint64_t desc_b) {{")
        print('    asm volatile(')
        print(f'        "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{t}.{t} "')
        print(f'        "{{{acc}}}, "')
        print(f'        "{{{a}}}, %{nacc + 4}, 1, 1, 1, 0;\\n"')
        print(f'        : {outs}')
        print('        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b));')
        print("}")
        print()
print("#endif /* FP4_WGMMA_OPS_CUH */")
