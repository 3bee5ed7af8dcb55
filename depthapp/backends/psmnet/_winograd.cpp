// 3x3x3 convolution (stride 1, zero padding 1) by Winograd's F(2x2x2, 3x3x3), channels-last,
// for CPUs with AVX-512 (elsewhere depthapp uses oneDNN's direct convolution).
//
// Each 2x2x2 block of outputs is computed from the 4x4x4 block of input around it: the input
// block is transformed (additions only), multiplied position by position with the transformed
// weights (64 matrix products of [tiles x Cin] by [Cin x Cout]) and transformed back
// (additions only). That is 8 multiplications per output and input channel where the direct
// convolution has 27, so 3.4x fewer; F(2, 3) is the Winograd variant with the smallest
// rounding error (its transforms have entries 0, +-1 and, in the weights' transform, 1/2).
//
// The work is cut in bands (two depth slices by two rows, up to kMaxTiles tiles along x)
// whose buffers stay in the core's L2; threads take bands in turn.
//
// Python:
//   supported() -> bool: this CPU runs the kernel (AVX-512F)
//   conv3d(input, weights, bias, output, (D, H, W, Cin, Cout), relu, threads)
//     input     float32 [D][H][W][Cin], C-contiguous (a channels-last volume's memory)
//     weights   float32 [64][Cin][Cout], already transformed (G g G^T per dimension)
//     bias      float32 [Cout]
//     output    float32 [D][H][W][Cout], written
//   Cin and Cout must be 16, 32, 48 or 64 (Cout: 16, 32 or 64).

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#if defined(__GNUC__) && defined(__x86_64__)
// GCC 12 warns that the undefined vector inside _mm512_set1_ps "may be used uninitialized".
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define HAVE_KERNEL 1
#else
#define HAVE_KERNEL 0
#endif

namespace {

bool cpu_supported() {
#if HAVE_KERNEL
    return __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
}

#if HAVE_KERNEL
constexpr int kMaxTiles = 48;  // tiles along x per band: 2 x 384 KB of buffers at 32 channels

struct Problem {
    const float* input;
    const float* weights;
    const float* bias;
    float* output;
    long depth, height, width, cin, cout;
    bool relu;
};

// The same products with the accumulators in registers: kRows tiles by kVectors x 16 outputs.
template <int kVectors, int kRows>
__attribute__((target("avx512f"))) inline void multiply_block(const float* a, long cin, const float* w,
                                                              float* c, long cout, long rows) {
    __m512 acc[kRows][kVectors];
    for (int r = 0; r < kRows; ++r)
        for (int q = 0; q < kVectors; ++q) acc[r][q] = _mm512_set1_ps(0.0f);
    for (long ci = 0; ci < cin; ++ci) {
        __m512 wv[kVectors];
        for (int q = 0; q < kVectors; ++q) wv[q] = _mm512_loadu_ps(w + ci * cout + 16 * q);
        for (int r = 0; r < kRows; ++r) {
            if (r < rows) {
                const __m512 x = _mm512_set1_ps(a[r * cin + ci]);
                for (int q = 0; q < kVectors; ++q) acc[r][q] = _mm512_fmadd_ps(x, wv[q], acc[r][q]);
            }
        }
    }
    for (int r = 0; r < kRows; ++r)
        if (r < rows)
            for (int q = 0; q < kVectors; ++q) _mm512_storeu_ps(c + r * cout + 16 * q, acc[r][q]);
}

template <int kVectors>
__attribute__((target("avx512f"))) void multiply_avx512(const Problem& pr, const float* v, float* m, long tiles) {
    constexpr int kRows = 24 / kVectors;
    const long cin = pr.cin, cout = pr.cout;
    for (int p = 0; p < 64; ++p) {
        const float* w = pr.weights + p * cin * cout;
        for (long t = 0; t < tiles; t += kRows) {
            const long rows = std::min<long>(kRows, tiles - t);
            const float* a = v + (p * kMaxTiles + t) * cin;
            float* c = m + (p * kMaxTiles + t) * cout;
            if (rows == kRows) {
                multiply_block<kVectors, kRows>(a, cin, w, c, cout, kRows);
            } else {
                multiply_block<kVectors, kRows>(a, cin, w, c, cout, rows);
            }
        }
    }
}
// The transforms 16 channels at a time in registers (Cin and Cout multiples of 16).
// The input transform of a band's tiles [first, first + tiles): along depth and rows once per
// column (a column belongs to two tiles), then along x per tile. columns: (2 tiles + 2) x 16 x Cin.
__attribute__((target("avx512f"))) void transform_input_band_avx512(const Problem& pr, long a, long b, long first,
                                                                    long tiles, float* columns, float* v,
                                                                    long stride) {
    const long cin = pr.cin, x0 = 2 * first - 1, count = 2 * tiles + 2;
    const float* rows[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
            const long z = 2 * a - 1 + i, y = 2 * b - 1 + j;
            rows[i][j] = z >= 0 && z < pr.depth && y >= 0 && y < pr.height
                             ? pr.input + ((z * pr.height + y) * pr.width) * cin : nullptr;
        }
    for (long c = 0; c < count; ++c) {
        const long x = x0 + c;
        const bool inside = x >= 0 && x < pr.width;
        float* column = columns + c * 16 * cin;
        for (long q = 0; q < cin; q += 16) {
            __m512 d[4][4];
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j)
                    d[i][j] = inside && rows[i][j] ? _mm512_loadu_ps(rows[i][j] + x * cin + q) : _mm512_set1_ps(0.0f);
            for (int j = 0; j < 4; ++j) {  // along depth
                const __m512 d0 = d[0][j], d1 = d[1][j], d2 = d[2][j], d3 = d[3][j];
                d[0][j] = _mm512_sub_ps(d0, d2);
                d[1][j] = _mm512_add_ps(d1, d2);
                d[2][j] = _mm512_sub_ps(d2, d1);
                d[3][j] = _mm512_sub_ps(d1, d3);
            }
            for (int i = 0; i < 4; ++i) {  // along rows
                float* out = column + (i * 4) * cin + q;
                _mm512_storeu_ps(out, _mm512_sub_ps(d[i][0], d[i][2]));
                _mm512_storeu_ps(out + cin, _mm512_add_ps(d[i][1], d[i][2]));
                _mm512_storeu_ps(out + 2 * cin, _mm512_sub_ps(d[i][2], d[i][1]));
                _mm512_storeu_ps(out + 3 * cin, _mm512_sub_ps(d[i][1], d[i][3]));
            }
        }
    }
    for (int ij = 0; ij < 16; ++ij) {  // along x: columns 2t .. 2t + 3 of the band; v written in order
        const int p = (ij / 4) * 16 + (ij % 4) * 4;
        for (long t = 0; t < tiles; ++t) {
            const float* base = columns + 2 * t * 16 * cin;
            for (long q = 0; q < cin; q += 16) {
                const float* in = base + ij * cin + q;
                const __m512 d0 = _mm512_loadu_ps(in), d1 = _mm512_loadu_ps(in + 16 * cin),
                             d2 = _mm512_loadu_ps(in + 32 * cin), d3 = _mm512_loadu_ps(in + 48 * cin);
                float* out = v + p * stride + t * cin + q;
                _mm512_storeu_ps(out, _mm512_sub_ps(d0, d2));
                _mm512_storeu_ps(out + stride, _mm512_add_ps(d1, d2));
                _mm512_storeu_ps(out + 2 * stride, _mm512_sub_ps(d2, d1));
                _mm512_storeu_ps(out + 3 * stride, _mm512_sub_ps(d1, d3));
            }
        }
    }
}

// The output transform of a band's tiles: along x for every tile first (m read in order), into
// along_x ([tiles][i 4][j 4][k 2][Cout]), then along rows and depth per tile, with the bias,
// and the ReLU, into the output.
__attribute__((target("avx512f"))) void transform_output_band_avx512(const Problem& pr, long a, long b, long first,
                                                                     long tiles, const float* m, long stride,
                                                                     float* along_x) {
    const long cout = pr.cout;
    for (int ij = 0; ij < 16; ++ij) {
        const int p = (ij / 4) * 16 + (ij % 4) * 4;
        for (long t = 0; t < tiles; ++t)
            for (long q = 0; q < cout; q += 16) {
                const float* base = m + p * stride + t * cout + q;
                const __m512 m0 = _mm512_loadu_ps(base), m1 = _mm512_loadu_ps(base + stride),
                             m2 = _mm512_loadu_ps(base + 2 * stride), m3 = _mm512_loadu_ps(base + 3 * stride);
                float* out = along_x + (t * 32 + ij * 2) * cout + q;
                _mm512_storeu_ps(out, _mm512_add_ps(_mm512_add_ps(m0, m1), m2));
                _mm512_storeu_ps(out + cout, _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3));
            }
    }
    for (long t = 0; t < tiles; ++t) {
        const float* w1 = along_x + t * 32 * cout;
        for (long q = 0; q < cout; q += 16) {
            __m512 w2[4][2][2];  // [i][j'][k']
            for (int i = 0; i < 4; ++i)
                for (int k = 0; k < 2; ++k) {
                    const float* base = w1 + (i * 8 + k) * cout + q;
                    const __m512 m0 = _mm512_loadu_ps(base), m1 = _mm512_loadu_ps(base + 2 * cout),
                                 m2 = _mm512_loadu_ps(base + 4 * cout), m3 = _mm512_loadu_ps(base + 6 * cout);
                    w2[i][0][k] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                    w2[i][1][k] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
                }
            const __m512 bias = _mm512_loadu_ps(pr.bias + q);
            for (int j = 0; j < 2; ++j) {
                const long y = 2 * b + j;
                for (int k = 0; k < 2; ++k) {
                    const long x = 2 * (first + t) + k;
                    const __m512 values[2] = {
                        _mm512_add_ps(_mm512_add_ps(w2[0][j][k], w2[1][j][k]), w2[2][j][k]),
                        _mm512_sub_ps(_mm512_sub_ps(w2[1][j][k], w2[2][j][k]), w2[3][j][k])};
                    for (int i = 0; i < 2; ++i) {
                        const long z = 2 * a + i;
                        if (z >= pr.depth || y >= pr.height || x >= pr.width) continue;
                        const long offset = ((z * pr.height + y) * pr.width + x) * cout + q;
                        __m512 sum = _mm512_add_ps(values[i], bias);
                        if (pr.relu) sum = _mm512_max_ps(sum, _mm512_set1_ps(0.0f));
                        _mm512_storeu_ps(pr.output + offset, sum);
                    }
                }
            }
        }
    }
}
using Multiply = void (*)(const Problem&, const float*, float*, long);

void run(const Problem& pr, int threads) {
    const long bands_z = (pr.depth + 1) / 2, bands_y = (pr.height + 1) / 2, tiles_x = (pr.width + 1) / 2;
    const long chunks = (tiles_x + kMaxTiles - 1) / kMaxTiles;
    const long jobs = bands_z * bands_y * chunks;
    const Multiply multiply = pr.cout == 16 ? multiply_avx512<1> : pr.cout == 32 ? multiply_avx512<2>
                                                                                   : multiply_avx512<4>;
    std::atomic<long> next{0};
    auto worker = [&] {
        std::vector<float> v(64 * kMaxTiles * pr.cin), m(64 * kMaxTiles * pr.cout);
        std::vector<float> columns((2 * kMaxTiles + 2) * 16 * pr.cin), along_x(kMaxTiles * 32 * pr.cout);
        for (long job = next++; job < jobs; job = next++) {
            const long chunk = job % chunks, band = job / chunks;
            const long a = band / bands_y, b = band % bands_y;
            const long first = chunk * kMaxTiles, tiles = std::min<long>(kMaxTiles, tiles_x - first);
            transform_input_band_avx512(pr, a, b, first, tiles, columns.data(), v.data(), kMaxTiles * pr.cin);
            multiply(pr, v.data(), m.data(), tiles);
            transform_output_band_avx512(pr, a, b, first, tiles, m.data(), kMaxTiles * pr.cout, along_x.data());
        }
    };
    std::vector<std::thread> pool;
    std::exception_ptr failure;
    for (int i = 1; i < threads; ++i) {
        try {
            pool.emplace_back(worker);
        } catch (...) {  // no more threads: the ones running (and this one) do the work
            break;
        }
    }
    try {
        worker();
    } catch (...) {
        failure = std::current_exception();
    }
    for (auto& thread : pool) thread.join();
    if (failure) std::rethrow_exception(failure);
}
#endif

struct Buffer {
    Py_buffer view{};
    bool held = false;
    ~Buffer() {
        if (held) PyBuffer_Release(&view);
    }
    bool get(PyObject* object, bool writable, Py_ssize_t floats, const char* name) {
        if (PyObject_GetBuffer(object, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) != 0)
            return false;
        held = true;
        if (view.itemsize != 4 || !view.format || std::string(view.format) != "f" || view.len != floats * 4) {
            PyErr_Format(PyExc_ValueError, "%s: expected %zd contiguous float32 values", name, floats);
            return false;
        }
        return true;
    }
};

PyObject* conv3d(PyObject*, PyObject* args) {
    PyObject *input, *weights, *bias, *output;
    long depth, height, width, cin, cout;
    int relu, threads;
    if (!PyArg_ParseTuple(args, "OOOO(lllll)pi", &input, &weights, &bias, &output, &depth, &height,
                          &width, &cin, &cout, &relu, &threads))
        return nullptr;
    if (!cpu_supported()) {
        PyErr_SetString(PyExc_RuntimeError, "conv3d: this CPU has no AVX-512");
        return nullptr;
    }
    if (depth < 1 || height < 1 || width < 1 || cin % 16 || cin < 16 || cin > 64 ||
        (cout != 16 && cout != 32 && cout != 64)) {
        PyErr_SetString(PyExc_ValueError, "conv3d: sizes out of range (Cin 16-64 in steps of 16, Cout 16, 32 or 64)");
        return nullptr;
    }
    const Py_ssize_t voxels = depth * height * width;
    Buffer in, w, b, out;
    if (!in.get(input, false, voxels * cin, "input") || !w.get(weights, false, 64 * cin * cout, "weights") ||
        !b.get(bias, false, cout, "bias") || !out.get(output, true, voxels * cout, "output"))
        return nullptr;
#if HAVE_KERNEL
    Problem problem{static_cast<const float*>(in.view.buf), static_cast<const float*>(w.view.buf),
                    static_cast<const float*>(b.view.buf),
                    static_cast<float*>(out.view.buf), depth, height, width, cin, cout, relu != 0};
#endif
    std::string error;
#if HAVE_KERNEL
    Py_BEGIN_ALLOW_THREADS
    try {
        run(problem, std::max(1, threads));
    } catch (const std::exception& failure) {
        error = failure.what();
    } catch (...) {
        error = "unknown failure";
    }
    Py_END_ALLOW_THREADS
#endif
    if (!error.empty()) {
        PyErr_SetString(PyExc_MemoryError, error.c_str());
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyObject* supported(PyObject*, PyObject*) { return PyBool_FromLong(cpu_supported()); }

PyMethodDef methods[] = {
    {"supported", supported, METH_NOARGS, "whether this CPU runs conv3d (AVX-512F)"},
    {"conv3d", conv3d, METH_VARARGS, "3x3x3 convolution by Winograd F(2x2x2, 3x3x3), channels-last"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_winograd", nullptr, -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__winograd() { return PyModule_Create(&module); }
