// CPU kernels of census + semi-global matching, compiled when the package is installed.
//
// Why C++ and not numba: the kernels load in about a millisecond, where numba's import and the
// load of its cached kernels took 0.6 s of every `depthapp run` (issue 18, start-up), and the
// single-pass aggregation below (two threads, one per sweep direction, nothing but row buffers
// between them) has no numba equivalent. Python wrappers in aggregation.py and cost.py check
// every argument; the checks here only keep a wrong call from touching memory it does not own.
//
// Layout: cost and aggregated volumes are (H, W, D) C-contiguous, disparity innermost, so the
// per-pixel loops over d run through contiguous memory and vectorise. The hot functions are
// compiled three times (x86-64 baseline, AVX2, AVX-512) and picked when the module loads.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#ifdef __linux__
#include <sched.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define HOT __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4"), flatten))
#else
#define HOT __attribute__((flatten))
#endif
#define INLINE inline __attribute__((always_inline))

namespace {

// ------------------------------------------------------------------------------------ threads

int available_cpus() {
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
    unsigned n = std::thread::hardware_concurrency();
    return n ? static_cast<int>(n) : 1;
}

int g_threads = 0;  // 0: every CPU this process may run on

int thread_count() { return g_threads > 0 ? g_threads : available_cpus(); }

// Runs body(begin, end) over [0, count) in chunks of `grain`, handed out one at a time to up to
// thread_count() threads (the caller is one): dynamic, so a core taken by another process slows
// one chunk, not half the work. Threads start per call: a few tens of microseconds against
// regions of milliseconds, and no pool spins between calls on a shared machine.
template <class Body>
void parallel_for(long count, long grain, const Body& body) {
    if (count <= 0) return;
    long chunks = (count + grain - 1) / grain;
    long threads = std::min<long>(thread_count(), chunks);
    std::atomic<long> next{0};
    std::exception_ptr failure;
    std::atomic<bool> failed{false};
    auto work = [&]() {
        try {
            for (;;) {
                long chunk = next.fetch_add(1);
                if (chunk >= chunks || failed.load()) break;
                long begin = chunk * grain;
                body(begin, std::min(count, begin + grain));
            }
        } catch (...) {  // an exception may not leave a thread: it would end the process
            if (!failed.exchange(true)) failure = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    try {
        pool.reserve(threads - 1);
        for (long i = 1; i < threads; ++i) pool.emplace_back(work);
    } catch (const std::exception&) {
        // No thread to be had (resource limits): the threads that did start and this one
        // share the chunks.
    }
    work();
    for (auto& thread : pool) thread.join();
    if (failure) std::rethrow_exception(failure);
}

// Runs work() without the GIL. False, with a Python exception set (MemoryError when it ran
// out of memory), when it threw: an exception must not cross into the interpreter.
template <class Work>
bool without_gil(const Work& work) {
    std::exception_ptr failure;
    Py_BEGIN_ALLOW_THREADS
    try {
        work();
    } catch (...) {
        failure = std::current_exception();
    }
    Py_END_ALLOW_THREADS
    if (!failure) return true;
    try {
        std::rethrow_exception(failure);
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    } catch (const std::exception& error) {
        PyErr_SetString(PyExc_RuntimeError, error.what());
    } catch (...) {
        PyErr_SetString(PyExc_RuntimeError, "sgm kernel failed");
    }
    return false;
}

// without_gil, then the Python result of a kernel that returns nothing: None, or NULL with
// the exception set.
template <class Work>
PyObject* none_without_gil(const Work& work) {
    if (!without_gil(work)) return nullptr;
    Py_RETURN_NONE;
}

// ------------------------------------------------------------------------------ census, cost

// One row of census bits. Bits 0-31 and 32-63 are built in separate 32-bit words, so the
// comparisons of float32 lanes and the words they set have the same width and vectorise.
HOT void census_row(const float* const* rows, const float* centre, long width,
                    int window_height, int window_width, uint32_t* low, uint32_t* high,
                    uint64_t* out) {
    std::fill(low, low + width, 0u);
    std::fill(high, high + width, 0u);
    const int ry = window_height / 2, rx = window_width / 2;
    unsigned bit = 0;
    for (int dy = 0; dy < window_height; ++dy) {
        for (int dx = 0; dx < window_width; ++dx) {
            if (dy == ry && dx == rx) continue;
            const float* neighbour = rows[dy] + dx;  // rows are padded by rx on each side
            uint32_t* word = bit < 32 ? low : high;
            const unsigned shift = bit & 31;
            for (long x = 0; x < width; ++x) word[x] |= uint32_t(neighbour[x] < centre[x]) << shift;
            ++bit;
        }
    }
    for (long x = 0; x < width; ++x) out[x] = uint64_t(low[x]) | (uint64_t(high[x]) << 32);
}

void census(const float* image, long height, long width, int window_height, int window_width,
            uint64_t* out) {
    const int ry = window_height / 2, rx = window_width / 2;
    const long padded_width = width + 2 * rx;
    // The image with its border replicated: ry rows above and below, rx columns each side
    std::vector<float> padded((height + 2 * ry) * padded_width);
    parallel_for(height + 2 * ry, 64, [&](long r0, long r1) {
        for (long r = r0; r < r1; ++r) {
            const float* row = image + std::clamp<long>(r - ry, 0, height - 1) * width;
            float* target = padded.data() + r * padded_width;
            std::fill(target, target + rx, row[0]);
            std::copy(row, row + width, target + rx);
            std::fill(target + rx + width, target + padded_width, row[width - 1]);
        }
    });
    parallel_for(height, 8, [&](long y0, long y1) {
        std::vector<const float*> rows(window_height);
        std::vector<uint32_t> low(width), high(width);
        for (long y = y0; y < y1; ++y) {
            for (int dy = 0; dy < window_height; ++dy)
                rows[dy] = padded.data() + (y + dy) * padded_width;
            census_row(rows.data(), image + y * width, width, window_height, window_width,
                       low.data(), high.data(), out + y * width);
        }
    });
}

struct CostTerms {
    float census, intensity, intensity_cap, gradient, gradient_cap;
};

// One row of the combined cost (see cost.py). The right row arrives reversed (index
// width - 1 - x), so the candidates of one left pixel, x - min_disp - k for k = 0.., are
// consecutive entries and the loop over k vectorises (AVX-512 has a vector popcount).
INLINE void cost_row_body(const uint64_t* census_left, const uint64_t* census_right_reversed,
                  const float* grey_left, const float* grey_right_reversed,
                  const float* grad_left, const float* grad_right_reversed, long width,
                  long n_disp, long min_disp, CostTerms terms, uint8_t border, uint8_t* out,
                  uint8_t* hamming, int64_t* min_sum, int64_t* min_count) {
    int64_t sum = 0, count = 0;
    for (long x = 0; x < width; ++x) {
        uint8_t* px = out + x * n_disp;
        // k is inside the right image when 0 <= x - min_disp - k <= width - 1
        long inside_from = std::max(0L, x - min_disp - width + 1);
        long inside_to = std::min(n_disp, x - min_disp + 1);
        for (long k = 0; k < std::min(n_disp, inside_from); ++k) px[k] = border;
        for (long k = std::max(0L, inside_to); k < n_disp; ++k) px[k] = border;
        if (inside_from >= inside_to) continue;
        const long base = width - 1 - (x - min_disp - inside_from);
        const uint64_t bits = census_left[x];
        const float grey = grey_left[x], grad = grad_left[x];
        const uint64_t* right_bits = census_right_reversed + base;
        const float* right_grey = grey_right_reversed + base;
        const float* right_grad = grad_right_reversed + base;
        uint8_t* inside = px + inside_from;
        const long n = inside_to - inside_from;
        // Hamming distances first: without a vector popcount (AVX-512 VPOPCNTQ is not in the
        // x86-64-v4 level) a popcount in the loop below would keep all of it scalar.
        for (long k = 0; k < n; ++k) hamming[k] = uint8_t(__builtin_popcountll(bits ^ right_bits[k]));
        for (long k = 0; k < n; ++k) {
            float value = terms.census * float(hamming[k])
                          + terms.intensity * std::min(std::fabs(grey - right_grey[k]),
                                                       terms.intensity_cap)
                          + terms.gradient * std::min(std::fabs(grad - right_grad[k]),
                                                      terms.gradient_cap);
            inside[k] = uint8_t(std::min(value + 0.5f, 255.0f));
        }
        if (inside_from == 0 && inside_to == n_disp) {
            uint8_t best = 255;
            for (long k = 0; k < n_disp; ++k) best = std::min(best, px[k]);
            sum += best;
            ++count;
        }
    }
    *min_sum = sum;
    *min_count = count;
}

#define COST_ROW_ARGS                                                                        \
    const uint64_t *census_left, const uint64_t *census_right_reversed, const float *grey_left, \
        const float *grey_right_reversed, const float *grad_left,                               \
        const float *grad_right_reversed, long width, long n_disp, long min_disp,               \
        CostTerms terms, uint8_t border, uint8_t *out, uint8_t *hamming, int64_t *min_sum,      \
        int64_t *min_count
#define COST_ROW_CALL                                                                         \
    cost_row_body(census_left, census_right_reversed, grey_left, grey_right_reversed,          \
                  grad_left, grad_right_reversed, width, n_disp, min_disp, terms, border, out,  \
                  hamming, min_sum, min_count)

HOT void cost_row(COST_ROW_ARGS) { COST_ROW_CALL; }

using CostRow = void (*)(COST_ROW_ARGS);

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
// AVX-512's vector popcount (Ice Lake, Zen 4 and later) is no x86-64 level, so no clone of
// cost_row has it; this copy does and is picked when the CPU has it (Hamming loop 8x wider).
__attribute__((target("arch=x86-64-v4,avx512vpopcntdq"), flatten)) void cost_row_vpopcnt(
    COST_ROW_ARGS) {
    COST_ROW_CALL;
}

CostRow pick_cost_row() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512bw")
               ? cost_row_vpopcnt
               : cost_row;
}
#else
CostRow pick_cost_row() { return cost_row; }
#endif

const CostRow best_cost_row = pick_cost_row();

void cost_volume(const uint64_t* census_left, const uint64_t* census_right,
                 const float* grey_left, const float* grey_right, const float* grad_left,
                 const float* grad_right, long height, long width, long n_disp, long min_disp,
                 CostTerms terms, uint8_t border, uint8_t* out, int64_t* row_min_sum,
                 int64_t* row_min_count) {
    parallel_for(height, 8, [&](long y0, long y1) {
        std::vector<uint64_t> bits(width);
        std::vector<float> grey(width), grad(width);
        std::vector<uint8_t> hamming(n_disp);
        for (long y = y0; y < y1; ++y) {
            const long row = y * width;
            for (long i = 0; i < width; ++i) {
                bits[i] = census_right[row + width - 1 - i];
                grey[i] = grey_right[row + width - 1 - i];
                grad[i] = grad_right[row + width - 1 - i];
            }
            best_cost_row(census_left + row, bits.data(), grey_left + row, grey.data(),
                     grad_left + row, grad.data(), width, n_disp, min_disp, terms, border,
                     out + row * n_disp, hamming.data(), row_min_sum + y, row_min_count + y);
        }
    });
}

void fill_border(long height, long width, long n_disp, long min_disp, uint8_t border,
                 uint8_t* out) {
    parallel_for(height, 16, [&](long y0, long y1) {
        for (long y = y0; y < y1; ++y)
            for (long x = 0; x < width; ++x) {
                uint8_t* px = out + (y * width + x) * n_disp;
                for (long k = std::max(0L, x - min_disp + 1); k < n_disp; ++k) px[k] = border;
                for (long k = 0; k < std::min(n_disp, x - min_disp - width + 1); ++k)
                    px[k] = border;
            }
    });
}

// P2 of one path lowered across intensity edges (pipeline.path_penalty_p2):
// max(P1, floor(P2 * g / (g + |I(p) - I(p - r)|) + 0.5)), border pixels replicated.
HOT void penalty_row(const float* row, const float* previous_row, long width, int dx, float p1,
                     float p2, float scale, int16_t* out) {
    for (long x = 0; x < width; ++x) {
        const float previous = previous_row[std::clamp<long>(x - dx, 0, width - 1)];
        const float value = std::floor(p2 * scale / (scale + std::fabs(row[x] - previous)) + 0.5f);
        out[x] = int16_t(std::max(value, p1));
    }
}

void path_penalties(const float* grey, long height, long width, const int* directions,
                    int n_paths, float p1, float p2, float scale, int16_t* out) {
    parallel_for(height, 32, [&](long y0, long y1) {
        for (int path = 0; path < n_paths; ++path) {
            const int dy = directions[2 * path], dx = directions[2 * path + 1];
            for (long y = y0; y < y1; ++y)
                penalty_row(grey + y * width, grey + std::clamp<long>(y - dy, 0, height - 1) * width,
                            width, dx, p1, p2, scale, out + (path * height + y) * width);
        }
    });
}

// -------------------------------------------------------------------------------- aggregation
//
// Hirschmueller 2008, eq. 13, along path r, q = p - r:
//   L(p, d) = C(p, d) + min(L(q, d), L(q, d -+ 1) + P1, min_k L(q, k) + P2) - min_k L(q, k)
// A path starts at the image border with L = C. Penalties are read at p, for path r.
//
// Two sweeps cover the paths. The downward sweep takes rows top to bottom and, in each row,
// pixels left to right: left-to-right (path 0), down (2), down-right (4), down-left (5). The
// upward sweep takes rows bottom to top, pixels right to left: right-to-left (1), up (3),
// up-right (6), up-left (7). Each path needs only the previous pixel or the previous row, so a
// sweep keeps two rows of path costs per direction (cache resident) and adds its paths into
// one row of sums. The sweeps run on two threads at once. Whichever reaches a row first stores
// its sums in the volume; the second adds its own and hands the row on (to the volume, or to
// winner-take-all), so the volume is written once and read once.

// The paths of the downward and the upward sweep, in the order horizontal, vertical, diagonal
// from x - 1, diagonal from x + 1 (indices into aggregation.PATH_DIRECTIONS).
constexpr int kSweepPaths[2][4] = {{0, 2, 4, 5}, {1, 3, 6, 7}};

// Penalty maps: (8, H, W) arrays of the working type with any strides (zero for broadcasts).
template <class Work>
struct Penalties {
    const char* data;
    Py_ssize_t path_stride, row_stride, column_stride;
    INLINE Work at(int path, long y, long x) const {
        return *reinterpret_cast<const Work*>(data + path * path_stride + y * row_stride
                                              + x * column_stride);
    }
};

// First pixel of a path: L = C. Stores L into sums (Add: adds). Returns min_d L.
template <bool Add, class Cost, class Work, class Sum>
INLINE Work path_start(const Cost* cost, Work* current, Sum* sums, long n_disp, Work big) {
    Work best = big;
    for (long d = 0; d < n_disp; ++d) {
        Work value = Work(cost[d]);
        current[d + 1] = value;
        best = std::min(best, value);
        sums[d] = Add ? Sum(sums[d] + Sum(value)) : Sum(value);
    }
    return best;
}

// L(p, d) from the previous pixel's padded row of L (index d + 1 holds disparity d);
// jump = min_k L(q, k) + P2. Every intermediate is cast back to the working type: int16
// lanes then stay int16 (integer promotion would widen them to int32, half as many a vector).
template <class Work>
INLINE Work recurrence(const Work* previous, long d, Work p1, Work jump, Work previous_min,
                       Work cost) {
    const Work value = std::min(std::min(previous[d + 1], Work(previous[d] + p1)),
                                std::min(Work(previous[d + 2] + p1), jump));
    return Work(cost + Work(value - previous_min));
}

// One step of the recurrence. previous/current are padded: index d + 1 holds disparity d,
// indices 0 and D + 1 hold `big`, so the d -+ 1 terms need no tests. Returns min_d L(p, d).
template <bool Add, class Cost, class Work, class Sum>
INLINE Work path_step(const Cost* cost, const Work* previous, Work previous_min, Work p1,
                      Work p2, Work* current, Sum* sums, long n_disp, Work big) {
    const Work jump = Work(previous_min + p2);
    Work best = big;
    for (long d = 0; d < n_disp; ++d) {
        const Work value = recurrence(previous, d, p1, jump, previous_min, Work(cost[d]));
        current[d + 1] = value;
        best = std::min(best, value);
        sums[d] = Add ? Sum(sums[d] + Sum(value)) : Sum(value);
    }
    return best;
}

// All paths of a sweep at once, for a pixel where none of them starts: the cost is loaded and
// the sums stored once for the four (or two) paths, and each path's row of costs is read once.
// Paths: horizontal, vertical and (with Four) the two diagonals. Returns min_d L per path.
template <bool Four, bool Add, class Cost, class Work, class Sum>
INLINE void fused_step(const Cost* __restrict cost, const Work* __restrict prev_h,
                       const Work* __restrict prev_v, const Work* __restrict prev_a,
                       const Work* __restrict prev_b, Work* __restrict cur_h,
                       Work* __restrict cur_v, Work* __restrict cur_a, Work* __restrict cur_b,
                       const Work* previous_min, const Work* p1, const Work* p2, Work* minima,
                       Sum* __restrict sums, long n_disp, Work big) {
    const Work jump_h = Work(previous_min[0] + p2[0]), jump_v = Work(previous_min[1] + p2[1]);
    const Work jump_a = Four ? Work(previous_min[2] + p2[2]) : big;
    const Work jump_b = Four ? Work(previous_min[3] + p2[3]) : big;
    const Work p1_h = p1[0], p1_v = p1[1], p1_a = Four ? p1[2] : Work(0),
               p1_b = Four ? p1[3] : Work(0);
    const Work min_h = previous_min[0], min_v = previous_min[1],
               min_a = Four ? previous_min[2] : Work(0), min_b = Four ? previous_min[3] : Work(0);
    Work best_h = big, best_v = big, best_a = big, best_b = big;
    // The rows never overlap; without this gcc's runtime alias checks (more than its limit
    // of ten) would keep the loop scalar.
#pragma GCC ivdep
    for (long d = 0; d < n_disp; ++d) {
        const Work c = Work(cost[d]);
        const Work h = recurrence(prev_h, d, p1_h, jump_h, min_h, c);
        const Work v = recurrence(prev_v, d, p1_v, jump_v, min_v, c);
        cur_h[d + 1] = h;
        cur_v[d + 1] = v;
        best_h = std::min(best_h, h);
        best_v = std::min(best_v, v);
        Sum total = Sum(Sum(h) + Sum(v));
        if constexpr (Four) {
            const Work a = recurrence(prev_a, d, p1_a, jump_a, min_a, c);
            const Work b = recurrence(prev_b, d, p1_b, jump_b, min_b, c);
            cur_a[d + 1] = a;
            cur_b[d + 1] = b;
            best_a = std::min(best_a, a);
            best_b = std::min(best_b, b);
            total = Sum(total + Sum(a) + Sum(b));
        }
        sums[d] = Add ? Sum(sums[d] + total) : total;
    }
    minima[0] = best_h;
    minima[1] = best_v;
    minima[2] = best_a;
    minima[3] = best_b;
}

template <class Work, class Sum>
struct SweepBuffers {
    long width, stride;  // stride: D + 2 padded entries per pixel
    std::vector<Work> line[2];  // horizontal path: previous and current pixel
    std::vector<Work> rows[3][2];  // vertical, diagonal dx=+1, diagonal dx=-1: two rows each
    std::vector<Work> minima[3][2];
    std::vector<Sum> pixel;  // one pixel's sums of this sweep's paths

    SweepBuffers(long width_, long n_disp, Work big)
        : width(width_), stride(n_disp + 2), pixel(n_disp) {
        for (auto& buffer : line) buffer.assign(stride, big);
        for (auto& pair : rows)
            for (auto& buffer : pair) buffer.assign(width * stride, big);
        for (auto& pair : minima)
            for (auto& buffer : pair) buffer.assign(width, big);
    }
};

// The cost and working types that get the fused step: census costs (uint8, int16 paths) and
// float costs (MC-CNN). Others (uint16 costs, int32 paths for large penalties) take the
// per-path steps, which keeps the number of compiled variants, and the build time, down.
template <class Cost, class Work>
constexpr bool kFused = (std::is_same_v<Cost, uint8_t> && std::is_same_v<Work, int16_t>)
                        || std::is_same_v<Cost, float>;

// One row of one sweep: the paths of `use` (horizontal, vertical, dx=+1, dx=-1 diagonals),
// summed into `sums` (W x D). `first_row`: paths from the previous row start here. `now`
// selects which of the two row buffers is current.
template <bool Down, class Cost, class Work, class Sum>
HOT void sweep_row(const Cost* cost, long y, long width, long n_disp, const bool* use,
                   const Penalties<Work>* p1, const Penalties<Work>* p2, Work big,
                   bool first_row, int now, SweepBuffers<Work, Sum>* buffers, Sum* sums,
                   bool add) {
    const int* paths = kSweepPaths[Down ? 0 : 1];
    const int h_path = paths[0], v_path = paths[1], a_path = paths[2], b_path = paths[3];
    const long stride = buffers->stride;
    const int before = 1 - now;
    Work* line_previous = buffers->line[0].data();
    Work* line_current = buffers->line[1].data();
    Work line_min = big;
    // The sweep's paths are all four, or horizontal and vertical alone (the 8- and 4-path
    // configurations): interior pixels then take the fused step.
    const bool two = use[h_path] && use[v_path] && !use[a_path] && !use[b_path];
    const bool four = use[h_path] && use[v_path] && use[a_path] && use[b_path];
    for (long i = 0; i < width; ++i) {
        const long x = Down ? i : width - 1 - i;
        const Cost* c = cost + (y * width + x) * n_disp;
        Sum* s = sums + x * n_disp;
        if constexpr (kFused<Cost, Work>) {
            if ((two || four) && !first_row && x > 0 && x < width - 1) {
                const Work previous_min[4] = {
                    line_min, buffers->minima[0][before][x],
                    four ? buffers->minima[1][before][x - 1] : big,
                    four ? buffers->minima[2][before][x + 1] : big};
                const Work q1[4] = {p1->at(h_path, y, x), p1->at(v_path, y, x),
                                    four ? p1->at(a_path, y, x) : Work(0),
                                    four ? p1->at(b_path, y, x) : Work(0)};
                const Work q2[4] = {p2->at(h_path, y, x), p2->at(v_path, y, x),
                                    four ? p2->at(a_path, y, x) : Work(0),
                                    four ? p2->at(b_path, y, x) : Work(0)};
                Work minima[4];
                const Work* prev_v = buffers->rows[0][before].data() + x * stride;
                Work* cur_v = buffers->rows[0][now].data() + x * stride;
                const Work* prev_a = buffers->rows[1][before].data() + (x - 1) * stride;
                const Work* prev_b = buffers->rows[2][before].data() + (x + 1) * stride;
                Work* cur_a = buffers->rows[1][now].data() + x * stride;
                Work* cur_b = buffers->rows[2][now].data() + x * stride;
#define FUSED(FOUR, ADD)                                                                       \
    fused_step<FOUR, ADD>(c, line_previous, prev_v, FOUR ? prev_a : nullptr,                   \
                          FOUR ? prev_b : nullptr, line_current, cur_v, FOUR ? cur_a : nullptr, \
                          FOUR ? cur_b : nullptr, previous_min, q1, q2, minima, s, n_disp, big)
                if (four) {
                    if (add) FUSED(true, true); else FUSED(true, false);
                    buffers->minima[1][now][x] = minima[2];
                    buffers->minima[2][now][x] = minima[3];
                } else {
                    if (add) FUSED(false, true); else FUSED(false, false);
                }
#undef FUSED
                line_min = minima[0];
                std::swap(line_previous, line_current);
                buffers->minima[0][now][x] = minima[1];
                continue;
            }
        }
        // This sweep's paths sum into `pixel` first, which is then added to what the other
        // sweep stored: a + b is the same float whichever sweep came first.
        Sum* const target = s;
        if (add) s = buffers->pixel.data();
        bool stored = false;
        auto step = [&](int path, const Work* previous, Work previous_min, Work* current,
                        bool start) -> Work {
            Work result;
            if (start) {
                result = stored ? path_start<true>(c, current, s, n_disp, big)
                                : path_start<false>(c, current, s, n_disp, big);
            } else {
                Work q1 = p1->at(path, y, x), q2 = p2->at(path, y, x);
                result = stored
                    ? path_step<true>(c, previous, previous_min, q1, q2, current, s, n_disp, big)
                    : path_step<false>(c, previous, previous_min, q1, q2, current, s, n_disp,
                                       big);
            }
            stored = true;
            return result;
        };
        if (use[h_path]) {
            line_min = step(h_path, line_previous, line_min, line_current, i == 0);
            std::swap(line_previous, line_current);
        }
        if (use[v_path]) {
            Work* current = buffers->rows[0][now].data() + x * stride;
            const Work* previous = buffers->rows[0][before].data() + x * stride;
            buffers->minima[0][now][x] =
                step(v_path, previous, buffers->minima[0][before][x], current, first_row);
        }
        if (use[a_path]) {  // previous pixel on the path: x - 1 in the previous row
            Work* current = buffers->rows[1][now].data() + x * stride;
            bool start = first_row || x == 0;
            const Work* previous = buffers->rows[1][before].data() + (start ? x : x - 1) * stride;
            Work previous_min = start ? big : buffers->minima[1][before][x - 1];
            buffers->minima[1][now][x] = step(a_path, previous, previous_min, current, start);
        }
        if (use[b_path]) {  // previous pixel on the path: x + 1 in the previous row
            Work* current = buffers->rows[2][now].data() + x * stride;
            bool start = first_row || x == width - 1;
            const Work* previous = buffers->rows[2][before].data() + (start ? x : x + 1) * stride;
            Work previous_min = start ? big : buffers->minima[2][before][x + 1];
            buffers->minima[2][now][x] = step(b_path, previous, previous_min, current, start);
        }
        if (!stored) std::fill(s, s + n_disp, Sum(0));
        if (add)
            for (long d = 0; d < n_disp; ++d) target[d] = Sum(target[d] + s[d]);
    }
}

// -------------------------------------------------------------------------- winner-take-all

struct Selection {  // per-row outputs of winner-take-all, each (W,) float32
    float* disparity;
    float* right_disparity;
    float* confidence;
};

// Disparity indices in lanes as wide as the sums, so loops over both vectorise together.
template <class Sum>
using IndexOf = std::conditional_t<sizeof(Sum) == 2, uint16_t, int32_t>;

template <class Sum>
struct SelectScratch {
    std::vector<Sum> running;
    std::vector<IndexOf<Sum>> running_index;
    std::vector<Sum> blank;  // 2D entries, `none` at D - 1, D and D + 1 (see select_row)
    SelectScratch(long width, long n_disp)
        : running(width), running_index(width), blank(2 * n_disp + 2, lowest()) {
        for (long d = n_disp - 1; d <= n_disp + 1; ++d) blank[d] = none();
    }
    static Sum none() {
        return std::numeric_limits<Sum>::has_infinity ? std::numeric_limits<Sum>::infinity()
                                                      : std::numeric_limits<Sum>::max();
    }
    static Sum lowest() {
        return std::numeric_limits<Sum>::has_infinity ? -std::numeric_limits<Sum>::infinity()
                                                      : std::numeric_limits<Sum>::lowest();
    }
};

// Winner-take-all of one (W, D) row of aggregated costs (semantics in aggregation.py):
// index of the lowest cost, uniqueness test against the best more than one level away,
// parabola sub-pixel fit, confidence 1 - best / second, and the right view's winners
// argmin_d S(y, xr + d, d) (first minimum). Every loop over d is a branch-free reduction or
// select, so each vectorises.
template <class Sum>
HOT void select_row(const Sum* row, long width, long n_disp, double uniqueness, bool subpixel,
                    Selection out, SelectScratch<Sum>* scratch) {
    using Index = IndexOf<Sum>;
    const double keep = (100.0 - uniqueness) / 100.0;
    const double inf = std::numeric_limits<double>::infinity();
    const Sum none = SelectScratch<Sum>::none();
    for (long x = 0; x < width; ++x) {
        const Sum* costs = row + x * n_disp;
        // Loops run over all D (not from 1): a trip count one short of the vector width
        // leaves a long scalar remainder.
        Sum best = none;
        for (long d = 0; d < n_disp; ++d) best = std::min(best, costs[d]);
        Index first = Index(n_disp);
        for (long d = 0; d < n_disp; ++d)
            first = std::min(first, costs[d] == best ? Index(d) : Index(n_disp));
        const long best_index = first;
        // the best more than one level from the winner
        // The best more than one level from the winner: a full-length reduction of
        // max(cost, blank), blank being `none` at the winner and its neighbours and the lowest
        // value elsewhere (partial ranges, masks, or blanking a copy stayed slow: scalar
        // remainders, or a stalled store-to-load forwarding).
        const Sum* blank = scratch->blank.data() + n_disp - best_index;
        Sum second_native = none;
        for (long d = 0; d < n_disp; ++d)
            second_native = std::min(second_native, std::max(costs[d], blank[d]));
        const bool found = best_index >= 2 || best_index + 2 < n_disp;
        const double second = found ? double(second_native) : inf;
        const double best_value = double(best);
        if (second < inf && second > 0)
            out.confidence[x] = float(std::max(0.0, 1.0 - best_value / second));
        else
            out.confidence[x] = second == inf ? 1.0f : 0.0f;
        if (uniqueness > 0 && second < inf && second * keep < best_value) {
            out.disparity[x] = std::numeric_limits<float>::quiet_NaN();
            continue;
        }
        double value = double(best_index);
        if (subpixel && best_index > 0 && best_index < n_disp - 1) {
            double left = double(costs[best_index - 1]), right = double(costs[best_index + 1]);
            double curvature = left + right - 2.0 * best_value;
            if (curvature > 0) value += 0.5 * (left - right) / curvature;
        }
        out.disparity[x] = float(value);
    }
    // Right view: pixel xr is matched by (xr + d, d). Running minima in reversed slots
    // (width - 1 - xr), so the right pixels of one left pixel are consecutive slots;
    // left pixels come in increasing x, so `<` keeps the first minimum.
    Sum* running = scratch->running.data();
    Index* running_index = scratch->running_index.data();
    for (long xr = 0; xr < width; ++xr) {
        running[width - 1 - xr] = row[xr * n_disp];
        running_index[width - 1 - xr] = 0;
    }
    for (long x = 1; x < width; ++x) {
        const long base = width - 1 - x, count = std::min(n_disp, x + 1);
        const Sum* costs = row + x * n_disp;
        Sum* slots = running + base;
        Index* indices = running_index + base;
        for (long d = 0; d < count; ++d) {  // d = 0 compares the slot's own initial value
            bool better = costs[d] < slots[d];
            slots[d] = better ? costs[d] : slots[d];
            indices[d] = better ? Index(d) : indices[d];
        }
    }
    for (long xr = 0; xr < width; ++xr)
        out.right_disparity[xr] = float(running_index[width - 1 - xr]);
}

// ------------------------------------------------------------------------- the two sweeps

template <class Cost, class Work, class Sum>
struct Aggregation {
    const Cost* cost;
    long height, width, n_disp;
    bool use[8];
    Penalties<Work> p1, p2;
    Work big;
    Sum* volume;  // (H, W, D): first arrivals' sums, and the result when `select` is off
    // Winner-take-all of the finished rows [select_from, select_to) into `selection` (row 0 =
    // select_from) instead of storing them.
    bool select = false;
    long select_from = 0, select_to = 0;
    double uniqueness = 0;
    bool subpixel = true;
    Selection selection{};

    // 0: untouched, 1: claimed by the first sweep to arrive, 2: its sums are in the volume
    std::vector<std::atomic<uint8_t>> row_state;
    // A byte the caller sets to stop the sweeps early (the result is then incomplete)
    const uint8_t* cancel = nullptr;

    bool cancelled() const { return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED); }

    bool sweep_has_paths(bool down) const {
        for (int path : kSweepPaths[down ? 0 : 1])
            if (use[path]) return true;
        return false;
    }

    void select_into(long y, const Sum* row, SelectScratch<Sum>& scratch) const {
        if (y < select_from || y >= select_to) return;
        const long offset = (y - select_from) * width;
        select_row(row, width, n_disp, uniqueness, subpixel,
                   Selection{selection.disparity + offset, selection.right_disparity + offset,
                             selection.confidence + offset},
                   &scratch);
    }

    // `alone`: the other sweep has no paths, so each row is final when this one leaves it.
    // Otherwise the first sweep to reach a row stores its sums there; the second waits until
    // they are stored (only where the sweeps meet can it have to), adds its own, and hands
    // the finished row to winner-take-all when selecting.
    template <bool Down>
    void sweep(bool alone) {
        SweepBuffers<Work, Sum> buffers(width, n_disp, big);
        const long count = width * n_disp;
        SelectScratch<Sum> scratch(select ? width : 0, n_disp);
        for (long r = 0; r < height; ++r) {
            if (cancelled()) return;
            const long y = Down ? r : height - 1 - r;
            Sum* sums = volume + y * count;
            bool first = true;
            if (!alone) {
                uint8_t expected = 0;
                first = row_state[y].compare_exchange_strong(expected, 1);
                if (!first)
                    while (row_state[y].load(std::memory_order_acquire) != 2) {
                        if (cancelled()) return;  // the other sweep may have stopped
                        std::this_thread::yield();
                    }
            }
            sweep_row<Down>(cost, y, width, n_disp, use, &p1, &p2, big, r == 0, int(r & 1),
                            &buffers, sums, !first);
            if (!alone && first)
                row_state[y].store(2, std::memory_order_release);
            else if (select)
                select_into(y, sums, scratch);
        }
    }

    void run() {
        const bool down = sweep_has_paths(true), up = sweep_has_paths(false);
        if (!down && !up) return;
        if (down != up) {
            if (down) sweep<true>(true); else sweep<false>(true);
            return;
        }
        row_state = std::vector<std::atomic<uint8_t>>(height);
        for (auto& state : row_state) state.store(0, std::memory_order_relaxed);
        std::thread other;
        std::exception_ptr failure;
        if (thread_count() > 1) {
            try {
                other = std::thread([this, &failure] {
                    try {
                        sweep<true>(false);
                    } catch (...) {  // an exception may not leave a thread
                        failure = std::current_exception();
                        // let the upward sweep finish the rows it waits for
                        for (auto& state : row_state) state.store(2, std::memory_order_release);
                    }
                });
            } catch (const std::system_error&) {
            }
        }
        if (other.joinable()) {
            try {
                sweep<false>(false);
            } catch (...) {
                other.join();
                throw;
            }
            other.join();
            if (failure) std::rethrow_exception(failure);
        } else {
            sweep<true>(false);
            sweep<false>(false);
        }
    }
};

// ------------------------------------------------------------------------ post-processing

void left_right_check(const float* disparity, const float* right, long height, long width,
                      double max_diff, float* out) {
    parallel_for(height, 16, [&](long y0, long y1) {
        for (long y = y0; y < y1; ++y)
            for (long x = 0; x < width; ++x) {
                const long i = y * width + x;
                const float d = disparity[i];
                out[i] = d;
                if (!std::isfinite(d)) continue;
                const double low = std::floor(double(d)), high = std::ceil(double(d));
                const long x_low = long(x - low), x_high = long(x - high);
                if (x_low < 0 || x_low >= width || x_high < 0 || x_high >= width) continue;
                if (std::fabs(double(right[y * width + x_low]) - low) > max_diff
                    && std::fabs(double(right[y * width + x_high]) - high) > max_diff)
                    out[i] = std::numeric_limits<float>::quiet_NaN();
            }
    });
}

// The (count - 1) / 2-th smallest of values[0:count] (quickselect, in place).
float lower_median(float* values, long count) {
    const long target = (count - 1) / 2;
    std::nth_element(values, values + target, values + count);
    return values[target];
}

void median_filter(const float* disparity, long height, long width, int size, float* out) {
    const int radius = size / 2;
    parallel_for(height, 16, [&](long y0, long y1) {
        std::vector<float> window(size * size);
        std::vector<float> low(width), mid(width), high(width);
        std::vector<uint8_t> full(width);
        for (long y = y0; y < y1; ++y) {
            const bool fast = size == 3 && y > 0 && y < height - 1;
            if (fast) {
                // Sort each column triple once; the 3x3 median is then
                // med(max of lows, med of mids, min of highs).
                for (long x = 0; x < width; ++x) {
                    float a = disparity[(y - 1) * width + x], b = disparity[y * width + x],
                          c = disparity[(y + 1) * width + x];
                    full[x] = std::isfinite(a) && std::isfinite(b) && std::isfinite(c);
                    float lo = std::min(a, b), hi = std::max(a, b);
                    low[x] = std::min(lo, c);
                    high[x] = std::max(hi, c);
                    mid[x] = std::max(lo, std::min(hi, c));
                }
            }
            for (long x = 0; x < width; ++x) {
                const float centre = disparity[y * width + x];
                float* target = out + y * width + x;
                if (!std::isfinite(centre)) {
                    *target = std::numeric_limits<float>::quiet_NaN();
                    continue;
                }
                if (fast && x > 0 && x < width - 1 && full[x - 1] && full[x] && full[x + 1]) {
                    float p = std::max(std::max(low[x - 1], low[x]), low[x + 1]);
                    float r = std::min(std::min(high[x - 1], high[x]), high[x + 1]);
                    float q1 = mid[x - 1], q2 = mid[x], q3 = mid[x + 1];
                    float q = std::max(std::min(q1, q2), std::min(std::max(q1, q2), q3));
                    *target = std::max(std::min(p, q), std::min(std::max(p, q), r));
                    continue;
                }
                long count = 0;
                for (long yy = std::max(0L, y - radius); yy < std::min(height, y + radius + 1); ++yy)
                    for (long xx = std::max(0L, x - radius); xx < std::min(width, x + radius + 1);
                         ++xx) {
                        float v = disparity[yy * width + xx];
                        if (std::isfinite(v)) window[count++] = v;
                    }
                *target = lower_median(window.data(), count);
            }
        }
    });
}

// Invalidates (in place) 4-connected regions of at most max_size pixels; neighbours whose
// disparities differ by at most max_diff are one region (OpenCV's filterSpeckles).
long remove_speckles(float* disparity, long height, long width, long max_size, double max_diff) {
    std::vector<int32_t> label(height * width, 0);
    std::vector<long> stack(height * width), members(height * width);
    long removed = 0;
    int32_t current = 0;
    for (long start = 0; start < height * width; ++start) {
        if (label[start] != 0 || !std::isfinite(disparity[start])) continue;
        label[start] = ++current;
        long top = 0, count = 0;
        stack[top++] = start;
        while (top > 0) {
            const long index = stack[--top];
            members[count++] = index;
            const long y = index / width, x = index - y * width;
            const float value = disparity[index];
            const long neighbours[4] = {y > 0 ? index - width : -1,
                                        y < height - 1 ? index + width : -1,
                                        x > 0 ? index - 1 : -1, x < width - 1 ? index + 1 : -1};
            for (long n : neighbours) {
                if (n < 0 || label[n] != 0) continue;
                const float other = disparity[n];
                if (std::isfinite(other) && std::fabs(double(other) - double(value)) <= max_diff) {
                    label[n] = current;
                    stack[top++] = n;
                }
            }
        }
        if (count <= max_size) {
            for (long i = 0; i < count; ++i)
                disparity[members[i]] = std::numeric_limits<float>::quiet_NaN();
            removed += count;
        }
    }
    return removed;
}

// ---------------------------------------------------------------------------- Python glue

// A buffer of the expected element size and count; releases itself.
struct Buffer {
    Py_buffer view{};
    bool held = false;
    ~Buffer() {
        if (held) PyBuffer_Release(&view);
    }
    bool get(PyObject* object, const char* name, Py_ssize_t itemsize, Py_ssize_t count,
             bool writable) {
        int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(object, &view, flags) != 0) return false;
        held = true;
        if (view.len != itemsize * count) {
            PyErr_Format(PyExc_ValueError, "%s: %zd bytes, expected %zd", name, view.len,
                         itemsize * count);
            return false;
        }
        return true;
    }
    template <class T>
    T* as() const {
        return static_cast<T*>(view.buf);
    }
};

// An (8, H, W) penalty map with any strides.
struct StridedBuffer {
    Py_buffer view{};
    bool held = false;
    ~StridedBuffer() {
        if (held) PyBuffer_Release(&view);
    }
    bool get(PyObject* object, const char* name, Py_ssize_t itemsize, long height, long width) {
        if (PyObject_GetBuffer(object, &view, PyBUF_STRIDES) != 0) return false;
        held = true;
        if (view.ndim != 3 || view.shape[0] != 8 || view.shape[1] != height
            || view.shape[2] != width || view.itemsize != itemsize) {
            PyErr_Format(PyExc_ValueError, "%s must be (8, %ld, %ld) with %zd-byte items", name,
                         height, width, itemsize);
            return false;
        }
        return true;
    }
    template <class Work>
    Penalties<Work> penalties() const {
        return {static_cast<const char*>(view.buf), view.strides[0], view.strides[1],
                view.strides[2]};
    }
};

bool positive_dims(long height, long width, long n_disp) {
    if (height < 1 || width < 1 || n_disp < 1) {
        PyErr_SetString(PyExc_ValueError, "sizes must be positive");
        return false;
    }
    if (n_disp > 32767) {  // disparity indices travel in 16-bit lanes beside 16-bit sums
        PyErr_SetString(PyExc_ValueError, "at most 32767 disparities");
        return false;
    }
    return true;
}

PyObject* py_set_num_threads(PyObject*, PyObject* args) {
    int count;
    if (!PyArg_ParseTuple(args, "i", &count)) return nullptr;
    g_threads = std::max(0, count);
    Py_RETURN_NONE;
}

PyObject* py_get_num_threads(PyObject*, PyObject*) { return PyLong_FromLong(thread_count()); }

PyObject* py_census(PyObject*, PyObject* args) {
    PyObject *image_obj, *out_obj;
    long height, width;
    int window_height, window_width;
    if (!PyArg_ParseTuple(args, "OlliiO", &image_obj, &height, &width, &window_height,
                          &window_width, &out_obj))
        return nullptr;
    if (!positive_dims(height, width, 1)) return nullptr;
    Buffer image, out;
    if (!image.get(image_obj, "image", 4, height * width, false)
        || !out.get(out_obj, "out", 8, height * width, true))
        return nullptr;
    return none_without_gil([&] {
        census(image.as<float>(), height, width, window_height, window_width, out.as<uint64_t>());
    });
}

PyObject* py_cost_volume(PyObject*, PyObject* args) {
    PyObject *objects[6], *out_obj, *sum_obj, *count_obj;
    long height, width, n_disp, min_disp;
    CostTerms terms;
    int border;
    if (!PyArg_ParseTuple(args, "OOOOOOllllfffffiOOO", &objects[0], &objects[1], &objects[2],
                          &objects[3], &objects[4], &objects[5], &height, &width, &n_disp,
                          &min_disp, &terms.census, &terms.intensity, &terms.intensity_cap,
                          &terms.gradient, &terms.gradient_cap, &border, &out_obj, &sum_obj,
                          &count_obj))
        return nullptr;
    if (!positive_dims(height, width, n_disp)) return nullptr;
    Buffer inputs[6], out, sums, counts;
    for (int i = 0; i < 6; ++i)
        if (!inputs[i].get(objects[i], "image", i < 2 ? 8 : 4, height * width, false))
            return nullptr;
    if (!out.get(out_obj, "out", 1, height * width * n_disp, true)
        || !sums.get(sum_obj, "row_min_sum", 8, height, true)
        || !counts.get(count_obj, "row_min_count", 8, height, true))
        return nullptr;
    return none_without_gil([&] {
        cost_volume(inputs[0].as<uint64_t>(), inputs[1].as<uint64_t>(), inputs[2].as<float>(),
                    inputs[3].as<float>(), inputs[4].as<float>(), inputs[5].as<float>(), height,
                    width, n_disp, min_disp, terms, uint8_t(std::clamp(border, 0, 255)),
                    out.as<uint8_t>(), sums.as<int64_t>(), counts.as<int64_t>());
    });
}

PyObject* py_fill_border(PyObject*, PyObject* args) {
    PyObject* out_obj;
    long height, width, n_disp, min_disp;
    int border;
    if (!PyArg_ParseTuple(args, "lllliO", &height, &width, &n_disp, &min_disp, &border,
                          &out_obj))
        return nullptr;
    if (!positive_dims(height, width, n_disp)) return nullptr;
    Buffer out;
    if (!out.get(out_obj, "out", 1, height * width * n_disp, true)) return nullptr;
    return none_without_gil([&] {
        fill_border(height, width, n_disp, min_disp, uint8_t(std::clamp(border, 0, 255)),
                    out.as<uint8_t>());
    });
}

PyObject* py_path_penalties(PyObject*, PyObject* args) {
    PyObject *grey_obj, *directions_obj, *out_obj;
    long height, width;
    int n_paths;
    float p1, p2, scale;
    if (!PyArg_ParseTuple(args, "OllOifffO", &grey_obj, &height, &width, &directions_obj,
                          &n_paths, &p1, &p2, &scale, &out_obj))
        return nullptr;
    if (!positive_dims(height, width, n_paths)) return nullptr;
    if (!(p2 >= 0 && p2 < 32768 && p1 >= 0 && p1 < 32768 && scale > 0)) {
        PyErr_SetString(PyExc_ValueError, "penalties must be in [0, 32767], the scale positive");
        return nullptr;
    }
    Buffer grey, directions, out;
    if (!grey.get(grey_obj, "grey", 4, height * width, false)
        || !directions.get(directions_obj, "directions", sizeof(int), 2 * n_paths, false)
        || !out.get(out_obj, "out", 2, n_paths * height * width, true))
        return nullptr;
    const int* steps = directions.as<int>();
    for (int i = 0; i < 2 * n_paths; ++i)
        if (steps[i] < -1 || steps[i] > 1) {
            PyErr_SetString(PyExc_ValueError, "path directions must be -1, 0 or 1");
            return nullptr;
        }
    return none_without_gil([&] {
            path_penalties(grey.as<float>(), height, width, steps, n_paths, p1, p2, scale,
                           out.as<int16_t>());
    });
}

// Type codes shared with aggregation.py: cost 0 uint8, 1 uint16, 2 float32; working type
// 0 int16, 1 int32, 2 float32; sums 0 uint16, 1 uint32, 2 float32.
template <class Cost, class Work, class Sum>
PyObject* run_aggregation(Aggregation<Cost, Work, Sum>& job, Buffer& cost, StridedBuffer& p1,
                     StridedBuffer& p2, Buffer& volume, double big) {
    job.cost = cost.as<Cost>();
    job.p1 = p1.penalties<Work>();
    job.p2 = p2.penalties<Work>();
    job.big = Work(big);
    job.volume = volume.as<Sum>();
    return none_without_gil([&] { job.run(); });
}

PyObject* py_aggregate(PyObject*, PyObject* args) {
    PyObject *cost_obj, *p1_obj, *p2_obj, *use_obj, *volume_obj;
    PyObject *disparity_obj = Py_None, *right_obj = Py_None, *confidence_obj = Py_None;
    PyObject* cancel_obj = Py_None;
    long height, width, n_disp, select_from = 0, select_to = 0;
    int cost_code, work_code, sum_code, subpixel = 1;
    double big, uniqueness = 0;
    if (!PyArg_ParseTuple(args, "OlllOOOiiidOO|lldpOOO", &cost_obj, &height, &width, &n_disp,
                          &p1_obj, &p2_obj, &use_obj, &cost_code, &work_code, &sum_code, &big,
                          &volume_obj, &cancel_obj, &select_from, &select_to, &uniqueness,
                          &subpixel, &disparity_obj, &right_obj, &confidence_obj))
        return nullptr;
    if (!positive_dims(height, width, n_disp)) return nullptr;
    static const Py_ssize_t cost_size[] = {1, 2, 4}, work_size[] = {2, 4, 4},
                            sum_size[] = {2, 4, 4};
    if (cost_code < 0 || cost_code > 2 || work_code < 0 || work_code > 2 || sum_code < 0
        || sum_code > 2 || ((cost_code == 2) != (work_code == 2))
        || ((work_code == 2) != (sum_code == 2))) {
        PyErr_SetString(PyExc_ValueError, "unsupported cost/working/sum type combination");
        return nullptr;
    }
    Buffer cost, volume, use, disparity, right, confidence, cancel;
    StridedBuffer p1, p2;
    const long count = height * width * n_disp;
    if (!cost.get(cost_obj, "cost", cost_size[cost_code], count, false)
        || !volume.get(volume_obj, "volume", sum_size[sum_code], count, true)
        || !use.get(use_obj, "use", 1, 8, false)
        || !p1.get(p1_obj, "p1", work_size[work_code], height, width)
        || !p2.get(p2_obj, "p2", work_size[work_code], height, width))
        return nullptr;
    if (cancel_obj != Py_None && !cancel.get(cancel_obj, "cancel", 1, 1, false)) return nullptr;
    const bool select = disparity_obj != Py_None;
    if (select) {
        if (select_from < 0 || select_to > height || select_from >= select_to) {
            PyErr_SetString(PyExc_ValueError, "selected rows out of range");
            return nullptr;
        }
        const long pixels = (select_to - select_from) * width;
        if (!disparity.get(disparity_obj, "disparity", 4, pixels, true)
            || !right.get(right_obj, "right_disparity", 4, pixels, true)
            || !confidence.get(confidence_obj, "confidence", 4, pixels, true))
            return nullptr;
    }
    auto setup = [&](auto& job) {
        job.height = height;
        job.width = width;
        job.n_disp = n_disp;
        for (int i = 0; i < 8; ++i) job.use[i] = use.as<uint8_t>()[i] != 0;
        job.cancel = cancel_obj != Py_None ? cancel.as<uint8_t>() : nullptr;
        job.select = select;
        if (select) {
            job.select_from = select_from;
            job.select_to = select_to;
            job.uniqueness = uniqueness;
            job.subpixel = subpixel != 0;
            job.selection = Selection{disparity.as<float>(), right.as<float>(),
                                      confidence.as<float>()};
        }
        return run_aggregation(job, cost, p1, p2, volume, big);
    };
#define CASE(C, W, S, TC, TW, TS)                            \
    if (cost_code == C && work_code == W && sum_code == S) { \
        Aggregation<TC, TW, TS> job;                         \
        return setup(job);                                   \
    }
    CASE(0, 0, 0, uint8_t, int16_t, uint16_t)
    CASE(0, 0, 1, uint8_t, int16_t, uint32_t)
    CASE(0, 1, 0, uint8_t, int32_t, uint16_t)
    CASE(0, 1, 1, uint8_t, int32_t, uint32_t)
    CASE(1, 0, 0, uint16_t, int16_t, uint16_t)
    CASE(1, 0, 1, uint16_t, int16_t, uint32_t)
    CASE(1, 1, 0, uint16_t, int32_t, uint16_t)
    CASE(1, 1, 1, uint16_t, int32_t, uint32_t)
    CASE(2, 2, 2, float, float, float)
#undef CASE
    PyErr_SetString(PyExc_ValueError, "unsupported cost/working/sum type combination");
    return nullptr;
}

template <class Sum>
void winner_take_all(const Sum* volume, long height, long width, long n_disp, double uniqueness,
                     bool subpixel, Selection out) {
    parallel_for(height, 4, [&](long y0, long y1) {
        SelectScratch<Sum> scratch(width, n_disp);
        for (long y = y0; y < y1; ++y)
            select_row(volume + y * width * n_disp, width, n_disp, uniqueness, subpixel,
                       Selection{out.disparity + y * width, out.right_disparity + y * width,
                                 out.confidence + y * width},
                       &scratch);
    });
}

PyObject* py_winner_take_all(PyObject*, PyObject* args) {
    PyObject *volume_obj, *disparity_obj, *right_obj, *confidence_obj;
    long height, width, n_disp;
    int sum_code, subpixel;
    double uniqueness;
    if (!PyArg_ParseTuple(args, "OillldpOOO", &volume_obj, &sum_code, &height, &width, &n_disp,
                          &uniqueness, &subpixel, &disparity_obj, &right_obj, &confidence_obj))
        return nullptr;
    if (!positive_dims(height, width, n_disp)) return nullptr;
    if (sum_code < 0 || sum_code > 2) {
        PyErr_SetString(PyExc_ValueError, "unsupported volume type");
        return nullptr;
    }
    static const Py_ssize_t sum_size[] = {2, 4, 4};
    Buffer volume, disparity, right, confidence;
    if (!volume.get(volume_obj, "volume", sum_size[sum_code], height * width * n_disp, false)
        || !disparity.get(disparity_obj, "disparity", 4, height * width, true)
        || !right.get(right_obj, "right_disparity", 4, height * width, true)
        || !confidence.get(confidence_obj, "confidence", 4, height * width, true))
        return nullptr;
    Selection out{disparity.as<float>(), right.as<float>(), confidence.as<float>()};
    return none_without_gil([&] {
        if (sum_code == 0)
            winner_take_all(volume.as<uint16_t>(), height, width, n_disp, uniqueness, subpixel, out);
        else if (sum_code == 1)
            winner_take_all(volume.as<uint32_t>(), height, width, n_disp, uniqueness, subpixel, out);
        else
            winner_take_all(volume.as<float>(), height, width, n_disp, uniqueness, subpixel, out);
    });
}

PyObject* py_left_right_check(PyObject*, PyObject* args) {
    PyObject *disparity_obj, *right_obj, *out_obj;
    long height, width;
    double max_diff;
    if (!PyArg_ParseTuple(args, "OOlldO", &disparity_obj, &right_obj, &height, &width,
                          &max_diff, &out_obj))
        return nullptr;
    if (!positive_dims(height, width, 1)) return nullptr;
    Buffer disparity, right, out;
    if (!disparity.get(disparity_obj, "disparity", 4, height * width, false)
        || !right.get(right_obj, "right_disparity", 4, height * width, false)
        || !out.get(out_obj, "out", 4, height * width, true))
        return nullptr;
    return none_without_gil([&] {
        left_right_check(disparity.as<float>(), right.as<float>(), height, width, max_diff,
                         out.as<float>());
    });
}

PyObject* py_median_filter(PyObject*, PyObject* args) {
    PyObject *disparity_obj, *out_obj;
    long height, width;
    int size;
    if (!PyArg_ParseTuple(args, "OlliO", &disparity_obj, &height, &width, &size, &out_obj))
        return nullptr;
    if (!positive_dims(height, width, 1)) return nullptr;
    if (size < 1 || size % 2 == 0) {
        PyErr_SetString(PyExc_ValueError, "median size must be odd and positive");
        return nullptr;
    }
    Buffer disparity, out;
    if (!disparity.get(disparity_obj, "disparity", 4, height * width, false)
        || !out.get(out_obj, "out", 4, height * width, true))
        return nullptr;
    return none_without_gil([&] {
        median_filter(disparity.as<float>(), height, width, size, out.as<float>());
    });
}

PyObject* py_remove_speckles(PyObject*, PyObject* args) {
    PyObject* disparity_obj;
    long height, width, max_size;
    double max_diff;
    if (!PyArg_ParseTuple(args, "Ollld", &disparity_obj, &height, &width, &max_size,
                          &max_diff))
        return nullptr;
    if (!positive_dims(height, width, 1)) return nullptr;
    Buffer disparity;
    if (!disparity.get(disparity_obj, "disparity", 4, height * width, true)) return nullptr;
    long removed = 0;
    if (!without_gil([&] {
            removed = remove_speckles(disparity.as<float>(), height, width, max_size, max_diff);
        }))
        return nullptr;
    return PyLong_FromLong(removed);
}

PyMethodDef methods[] = {
    {"set_num_threads", py_set_num_threads, METH_VARARGS,
     "set_num_threads(n): threads the kernels use; 0 = every CPU this process may use"},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "threads the kernels use"},
    {"census", py_census, METH_VARARGS, nullptr},
    {"cost_volume", py_cost_volume, METH_VARARGS, nullptr},
    {"fill_border", py_fill_border, METH_VARARGS, nullptr},
    {"path_penalties", py_path_penalties, METH_VARARGS, nullptr},
    {"aggregate", py_aggregate, METH_VARARGS, nullptr},
    {"winner_take_all", py_winner_take_all, METH_VARARGS, nullptr},
    {"left_right_check", py_left_right_check, METH_VARARGS, nullptr},
    {"median_filter", py_median_filter, METH_VARARGS, nullptr},
    {"remove_speckles", py_remove_speckles, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native",
                      "CPU kernels of census + semi-global matching (see _native.cpp).", -1,
                      methods};

}  // namespace

PyMODINIT_FUNC PyInit__native() { return PyModule_Create(&module); }
