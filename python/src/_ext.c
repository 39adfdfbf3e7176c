/* fp4gemm._ext: the C part of the Python binding, on CPython's stable ABI (abi3, 3.11+: the
 * buffer protocol joined the limited API in 3.11), so one build serves every later Python.
 *
 * Argument translation only, for the per-call path of mm_fp4: the Python side (_api.py) has
 * checked shapes, dtypes and layouts; this fills an fp4_gemm_desc from buffer pointers and calls
 * fp4_gemm. It does not link libfp4gemm: fp4gemm/_lib.py hands it the address of fp4_gemm in
 * the library ctypes loaded (init()), so there is exactly one copy of the library (one log
 * level, one registry) whichever path a call takes. The GIL is released during fp4_gemm, as
 * ctypes releases it: other Python threads run meanwhile, and a log callback into Python (log_to_python)
 * from any thread cannot deadlock. The arrays stay alive: the argument tuple holds them. */
#ifndef Py_LIMITED_API /* Python_add_library(... USE_SABI 3.11) defines it */
#define Py_LIMITED_API 0x030B0000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "fp4gemm.h"

typedef fp4_status (*gemm_fn)(fp4_ctx *, const fp4_gemm_desc *);
static gemm_fn g_gemm;

static PyObject *ext_init(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long addr;
    if (!PyArg_ParseTuple(args, "K", &addr)) return NULL;
    g_gemm = (gemm_fn)(uintptr_t)addr;
    Py_RETURN_NONE;
}

/* The address of an object's first element (PyBUF_STRIDES: any strides; the caller checked
 * them). None -> NULL; an int is the address itself (a GPU array's data pointer, or a torch
 * tensor's data_ptr(): _tensors.py). */
static int buf_ptr(PyObject *obj, int writable, void **out) {
    if (obj == Py_None) {
        *out = NULL;
        return 0;
    }
    if (PyLong_Check(obj)) {
        *out = PyLong_AsVoidPtr(obj);
        return PyErr_Occurred() ? -1 : 0;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_STRIDES | (writable ? PyBUF_WRITABLE : 0)) != 0)
        return -1;
    *out = view.buf;
    PyBuffer_Release(&view); /* the caller holds obj for the whole call */
    return 0;
}

/* gemm(ctx, a, a_sf, b, b_sf, d, m, n, k, a_dtype, a_layout, b_layout, d_dtype, ldd, alpha,
 *      backend, config[, alpha_ptr, stream]) -> fp4_status (int). Arrays: buffers or
 * addresses (int); alpha_ptr None or an address; stream a cudaStream_t as an int (0: the legacy
 * default stream, NULL). */
static PyObject *ext_gemm(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long ctx;
    PyObject *a, *a_sf, *b, *b_sf, *d;
    long long m, n, k, ldd;
    int a_dtype, a_layout, b_layout, d_dtype, backend, config;
    double alpha;
    PyObject *alpha_obj = Py_None;
    unsigned long long stream = 0;
    if (!PyArg_ParseTuple(args, "KOOOOOLLLiiiiLdii|OK", &ctx, &a, &a_sf, &b, &b_sf, &d, &m, &n,
                          &k, &a_dtype, &a_layout, &b_layout, &d_dtype, &ldd, &alpha, &backend,
                          &config, &alpha_obj, &stream))
        return NULL;
    if (!g_gemm) {
        PyErr_SetString(PyExc_RuntimeError, "fp4gemm._ext: init() was not called");
        return NULL;
    }
    fp4_gemm_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.struct_size = sizeof desc;
    void *pa, *pas, *pb, *pbs, *pd, *palpha;
    if (buf_ptr(a, 0, &pa) || buf_ptr(a_sf, 0, &pas) || buf_ptr(b, 0, &pb) ||
        buf_ptr(b_sf, 0, &pbs) || buf_ptr(d, 1, &pd) || buf_ptr(alpha_obj, 0, &palpha))
        return NULL;
    desc.m = m;
    desc.n = n;
    desc.k = k;
    desc.a_dtype = (fp4_dtype)a_dtype;
    desc.a = pa;
    desc.a_sf = pas;
    desc.a_sf_layout = (fp4_sf_layout)a_layout;
    desc.b = pb;
    desc.b_sf = pbs;
    desc.b_sf_layout = (fp4_sf_layout)b_layout;
    desc.d_dtype = (fp4_dtype)d_dtype;
    desc.d = pd;
    desc.ldd = ldd;
    desc.alpha = (float)alpha;
    desc.alpha_ptr = (const float *)palpha;
    desc.backend = (fp4_backend)backend;
    desc.stream = (struct CUstream_st *)(uintptr_t)stream;
    desc.config = config;
    fp4_status st;
    Py_BEGIN_ALLOW_THREADS
    st = g_gemm((fp4_ctx *)(uintptr_t)ctx, &desc);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong((long)st);
}

static PyMethodDef methods[] = {
    {"init", ext_init, METH_VARARGS, "init(address of fp4_gemm)"},
    {"gemm", ext_gemm, METH_VARARGS, "fills an fp4_gemm_desc from buffers and calls fp4_gemm"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ext", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__ext(void) { return PyModule_Create(&module); }
