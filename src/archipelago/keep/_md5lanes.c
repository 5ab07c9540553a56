/* MD5 of up to 16 independent messages at once, in AVX-512 lanes (keep/md5.py batches the blocks
 * that are being hashed at the same moment into one call). One message's MD5 cannot be split: each
 * 64-byte chunk needs the state the chunk before left; so a relay or client with several blocks in
 * flight gains across them. benchmarks/md5_lanes.py: 3.9x hashlib's OpenSSL md5 with 4 blocks at
 * once, 5.5x with 8, 10.5x with 16, the same with one. Three widths: 4 lanes in 128-bit registers
 * (words loaded one by one), 8 and 16 in 256- and 512-bit registers (words gathered).
 *
 * advance(states, buffers): lane i's state (a writable 16-byte buffer: A, B, C, D, as uint32 in
 * native order) goes over buffers[i], whose length is a multiple of 64; padding is the caller's.
 * The GIL is released meanwhile. available() tells whether this CPU can run it (AVX-512 F and VL,
 * or AVX2 alone: eight lanes at a time, slower).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

static const uint32_t K[64] = {
0xd76aa478,0xe8c7b756,0x242070db,0xc1bdceee,0xf57c0faf,0x4787c62a,0xa8304613,0xfd469501,
0x698098d8,0x8b44f7af,0xffff5bb1,0x895cd7be,0x6b901122,0xfd987193,0xa679438e,0x49b40821,
0xf61e2562,0xc040b340,0x265e5a51,0xe9b6c7aa,0xd62f105d,0x02441453,0xd8a1e681,0xe7d3fbc8,
0x21e1cde6,0xc33707d6,0xf4d50d87,0x455a14ed,0xa9e3e905,0xfcefa3f8,0x676f02d9,0x8d2a4c8a,
0xfffa3942,0x8771f681,0x6d9d6122,0xfde5380c,0xa4beea44,0x4bdecfa9,0xf6bb4b60,0xbebfbc70,
0x289b7ec6,0xeaa127fa,0xd4ef3085,0x04881d05,0xd9d4d039,0xe6db99e5,0x1fa27cf8,0xc4ac5665,
0xf4292244,0x432aff97,0xab9423a7,0xfc93a039,0x655b59c3,0x8f0ccc92,0xffeff47d,0x85845dd1,
0x6fa87e4f,0xfe2ce6e0,0xa3014314,0x4e0811a1,0xf7537e82,0xbd3af235,0x2ad7d2bb,0xeb86d391};

static const uint8_t zero_chunk[64];  /* what a lane that has finished reads */

/* the 64 steps: F, G, H, I as ternary-logic immediates (0xCA, 0xE4, 0x96, 0x39) */
#define MD5_STEPS(STEP) \
  STEP(0xCA,a,b,c,d,M[0],K[0],7);  STEP(0xCA,d,a,b,c,M[1],K[1],12); STEP(0xCA,c,d,a,b,M[2],K[2],17); STEP(0xCA,b,c,d,a,M[3],K[3],22); \
  STEP(0xCA,a,b,c,d,M[4],K[4],7);  STEP(0xCA,d,a,b,c,M[5],K[5],12); STEP(0xCA,c,d,a,b,M[6],K[6],17); STEP(0xCA,b,c,d,a,M[7],K[7],22); \
  STEP(0xCA,a,b,c,d,M[8],K[8],7);  STEP(0xCA,d,a,b,c,M[9],K[9],12); STEP(0xCA,c,d,a,b,M[10],K[10],17); STEP(0xCA,b,c,d,a,M[11],K[11],22); \
  STEP(0xCA,a,b,c,d,M[12],K[12],7); STEP(0xCA,d,a,b,c,M[13],K[13],12); STEP(0xCA,c,d,a,b,M[14],K[14],17); STEP(0xCA,b,c,d,a,M[15],K[15],22); \
  STEP(0xE4,a,b,c,d,M[1],K[16],5);  STEP(0xE4,d,a,b,c,M[6],K[17],9); STEP(0xE4,c,d,a,b,M[11],K[18],14); STEP(0xE4,b,c,d,a,M[0],K[19],20); \
  STEP(0xE4,a,b,c,d,M[5],K[20],5);  STEP(0xE4,d,a,b,c,M[10],K[21],9); STEP(0xE4,c,d,a,b,M[15],K[22],14); STEP(0xE4,b,c,d,a,M[4],K[23],20); \
  STEP(0xE4,a,b,c,d,M[9],K[24],5);  STEP(0xE4,d,a,b,c,M[14],K[25],9); STEP(0xE4,c,d,a,b,M[3],K[26],14); STEP(0xE4,b,c,d,a,M[8],K[27],20); \
  STEP(0xE4,a,b,c,d,M[13],K[28],5); STEP(0xE4,d,a,b,c,M[2],K[29],9); STEP(0xE4,c,d,a,b,M[7],K[30],14); STEP(0xE4,b,c,d,a,M[12],K[31],20); \
  STEP(0x96,a,b,c,d,M[5],K[32],4);  STEP(0x96,d,a,b,c,M[8],K[33],11); STEP(0x96,c,d,a,b,M[11],K[34],16); STEP(0x96,b,c,d,a,M[14],K[35],23); \
  STEP(0x96,a,b,c,d,M[1],K[36],4);  STEP(0x96,d,a,b,c,M[4],K[37],11); STEP(0x96,c,d,a,b,M[7],K[38],16); STEP(0x96,b,c,d,a,M[10],K[39],23); \
  STEP(0x96,a,b,c,d,M[13],K[40],4); STEP(0x96,d,a,b,c,M[0],K[41],11); STEP(0x96,c,d,a,b,M[3],K[42],16); STEP(0x96,b,c,d,a,M[6],K[43],23); \
  STEP(0x96,a,b,c,d,M[9],K[44],4);  STEP(0x96,d,a,b,c,M[12],K[45],11); STEP(0x96,c,d,a,b,M[15],K[46],16); STEP(0x96,b,c,d,a,M[2],K[47],23); \
  STEP(0x39,a,b,c,d,M[0],K[48],6);  STEP(0x39,d,a,b,c,M[7],K[49],10); STEP(0x39,c,d,a,b,M[14],K[50],15); STEP(0x39,b,c,d,a,M[5],K[51],21); \
  STEP(0x39,a,b,c,d,M[12],K[52],6); STEP(0x39,d,a,b,c,M[3],K[53],10); STEP(0x39,c,d,a,b,M[10],K[54],15); STEP(0x39,b,c,d,a,M[1],K[55],21); \
  STEP(0x39,a,b,c,d,M[8],K[56],6);  STEP(0x39,d,a,b,c,M[15],K[57],10); STEP(0x39,c,d,a,b,M[6],K[58],15); STEP(0x39,b,c,d,a,M[13],K[59],21); \
  STEP(0x39,a,b,c,d,M[4],K[60],6);  STEP(0x39,d,a,b,c,M[11],K[61],10); STEP(0x39,c,d,a,b,M[2],K[62],15); STEP(0x39,b,c,d,a,M[9],K[63],21);

#define STEP16(imm, a, b, c, d, m, k, s) \
  a = _mm512_add_epi32(b, _mm512_rol_epi32(_mm512_add_epi32(_mm512_add_epi32(a, \
      _mm512_ternarylogic_epi32(b, c, d, imm)), _mm512_add_epi32(m, _mm512_set1_epi32(k))), s))
#define STEP8(imm, a, b, c, d, m, k, s) \
  a = _mm256_add_epi32(b, _mm256_rol_epi32(_mm256_add_epi32(_mm256_add_epi32(a, \
      _mm256_ternarylogic_epi32(b, c, d, imm)), _mm256_add_epi32(m, _mm256_set1_epi32(k))), s))
#define STEP4(imm, a, b, c, d, m, k, s) \
  a = _mm_add_epi32(b, _mm_rol_epi32(_mm_add_epi32(_mm_add_epi32(a, \
      _mm_ternarylogic_epi32(b, c, d, imm)), _mm_add_epi32(m, _mm_set1_epi32(k))), s))

static uint64_t load_states(int lanes, const uint64_t *chunks, const uint32_t *state, uint32_t s[4][16]) {
  uint64_t most = 0;
  memset(s, 0, sizeof(uint32_t) * 64);
  for (int i = 0; i < lanes; i++) {
    for (int j = 0; j < 4; j++) s[j][i] = state[i * 4 + j];
    if (chunks[i] > most) most = chunks[i];
  }
  return most;
}

static void store_states(int lanes, uint32_t *state, uint32_t s[4][16]) {
  for (int i = 0; i < lanes; i++)
    for (int j = 0; j < 4; j++) state[i * 4 + j] = s[j][i];
}

/* Where each of `width` lanes reads chunk t (a lane that has finished, or is not used, reads
 * zeros), and which lanes are still going: bit i of the mask. */
static unsigned chunk_addresses(int width, int lanes, uint64_t t, const uint8_t *const *ptrs, const uint64_t *chunks,
                                const uint8_t **at) {
  unsigned active = 0;
  for (int i = 0; i < width; i++) {
    int on = i < lanes && t < chunks[i];
    active |= (unsigned)on << i;
    at[i] = on ? ptrs[i] + 64 * t : zero_chunk;
  }
  return active;
}

/* 16 lanes in 512-bit registers; each chunk's words gathered from the lanes' addresses. */
__attribute__((target("avx512f")))
static void md5_lanes16(int lanes, const uint8_t *const *ptrs, const uint64_t *chunks, uint32_t *state) {
  uint32_t s[4][16];
  uint64_t most = load_states(lanes, chunks, state, s);
  __m512i A = _mm512_loadu_si512(s[0]), B = _mm512_loadu_si512(s[1]);
  __m512i C = _mm512_loadu_si512(s[2]), D = _mm512_loadu_si512(s[3]);
  for (uint64_t t = 0; t < most; t++) {
    const uint8_t *addr[16];
    __mmask16 active = (__mmask16)chunk_addresses(16, lanes, t, ptrs, chunks, addr);
    __m512i lo = _mm512_loadu_si512(addr), hi = _mm512_loadu_si512(addr + 8), M[16];
    for (int w = 0; w < 16; w++) {
      __m256i l = _mm512_i64gather_epi32(lo, (const void *)(intptr_t)(4 * w), 1);
      __m256i h = _mm512_i64gather_epi32(hi, (const void *)(intptr_t)(4 * w), 1);
      M[w] = _mm512_inserti64x4(_mm512_castsi256_si512(l), h, 1);
    }
    __m512i a = A, b = B, c = C, d = D;
    MD5_STEPS(STEP16)
    A = _mm512_mask_add_epi32(A, active, A, a); B = _mm512_mask_add_epi32(B, active, B, b);
    C = _mm512_mask_add_epi32(C, active, C, c); D = _mm512_mask_add_epi32(D, active, D, d);
  }
  _mm512_storeu_si512(s[0], A); _mm512_storeu_si512(s[1], B); _mm512_storeu_si512(s[2], C); _mm512_storeu_si512(s[3], D);
  store_states(lanes, state, s);
}

/* Up to 8 lanes in 256-bit registers; one gather of 8 per word. */
__attribute__((target("avx512f,avx512vl")))
static void md5_lanes8(int lanes, const uint8_t *const *ptrs, const uint64_t *chunks, uint32_t *state) {
  uint32_t s[4][16];
  uint64_t most = load_states(lanes, chunks, state, s);
  __m256i A = _mm256_loadu_si256((void *)s[0]), B = _mm256_loadu_si256((void *)s[1]);
  __m256i C = _mm256_loadu_si256((void *)s[2]), D = _mm256_loadu_si256((void *)s[3]);
  for (uint64_t t = 0; t < most; t++) {
    const uint8_t *addr[8];
    __mmask8 active = (__mmask8)chunk_addresses(8, lanes, t, ptrs, chunks, addr);
    __m512i where = _mm512_loadu_si512(addr);
    __m256i M[16];
    for (int w = 0; w < 16; w++) M[w] = _mm512_i64gather_epi32(where, (const void *)(intptr_t)(4 * w), 1);
    __m256i a = A, b = B, c = C, d = D;
    MD5_STEPS(STEP8)
    A = _mm256_mask_add_epi32(A, active, A, a); B = _mm256_mask_add_epi32(B, active, B, b);
    C = _mm256_mask_add_epi32(C, active, C, c); D = _mm256_mask_add_epi32(D, active, D, d);
  }
  _mm256_storeu_si256((void *)s[0], A); _mm256_storeu_si256((void *)s[1], B);
  _mm256_storeu_si256((void *)s[2], C); _mm256_storeu_si256((void *)s[3], D);
  store_states(lanes, state, s);
}

static inline uint32_t word(const uint8_t *p, int w) { uint32_t v; memcpy(&v, p + 4 * w, 4); return v; }

/* Up to 4 lanes in 128-bit registers, words loaded one by one (cheaper than gathers for few lanes). */
__attribute__((target("avx512f,avx512vl")))
static void md5_lanes4(int lanes, const uint8_t *const *ptrs, const uint64_t *chunks, uint32_t *state) {
  uint32_t s[4][16];
  uint64_t most = load_states(lanes, chunks, state, s);
  __m128i A = _mm_loadu_si128((void *)s[0]), B = _mm_loadu_si128((void *)s[1]);
  __m128i C = _mm_loadu_si128((void *)s[2]), D = _mm_loadu_si128((void *)s[3]);
  for (uint64_t t = 0; t < most; t++) {
    const uint8_t *q[4];
    __mmask8 active = (__mmask8)chunk_addresses(4, lanes, t, ptrs, chunks, q);
    __m128i M[16];
    for (int w = 0; w < 16; w++) M[w] = _mm_setr_epi32(word(q[0], w), word(q[1], w), word(q[2], w), word(q[3], w));
    __m128i a = A, b = B, c = C, d = D;
    MD5_STEPS(STEP4)
    A = _mm_mask_add_epi32(A, active, A, a); B = _mm_mask_add_epi32(B, active, B, b);
    C = _mm_mask_add_epi32(C, active, C, c); D = _mm_mask_add_epi32(D, active, D, d);
  }
  _mm_storeu_si128((void *)s[0], A); _mm_storeu_si128((void *)s[1], B);
  _mm_storeu_si128((void *)s[2], C); _mm_storeu_si128((void *)s[3], D);
  store_states(lanes, state, s);
}


/* One lane without SIMD, for a lone message where only AVX2 is there (its 8-lane kernel runs one
 * lane at 0.56x hashlib's rate; this at about hashlib's). */
static inline uint32_t mix1(int imm, uint32_t b, uint32_t c, uint32_t d) {
  switch (imm) {
    case 0xCA: return d ^ (b & (c ^ d));
    case 0xE4: return c ^ (d & (b ^ c));
    case 0x96: return b ^ c ^ d;
    default: return c ^ (b | ~d);
  }
}

#define STEP1(imm, a, b, c, d, m, k, s) \
  do { uint32_t x_ = a + mix1(imm, b, c, d) + m + (k); a = b + ((x_ << (s)) | (x_ >> (32 - (s)))); } while (0)

static void md5_one(const uint8_t *p, uint64_t chunks, uint32_t *state) {
  uint32_t A = state[0], B = state[1], C = state[2], D = state[3];
  for (uint64_t t = 0; t < chunks; t++, p += 64) {
    uint32_t M[16];
    memcpy(M, p, 64);  /* little-endian words, as MD5 reads them (x86) */
    uint32_t a = A, b = B, c = C, d = D;
    MD5_STEPS(STEP1)
    A += a; B += b; C += c; D += d;
  }
  state[0] = A; state[1] = B; state[2] = C; state[3] = D;
}

/* Up to 8 lanes with AVX2 alone (CPUs without AVX-512): F, G, H, I from and/xor/or, rotates from
 * two shifts, a lane that has finished kept by a blend. About half the 8-lane AVX-512 rate. */
#define AVX2_ROL(x, s) _mm256_or_si256(_mm256_slli_epi32(x, s), _mm256_srli_epi32(x, 32 - (s)))

__attribute__((target("avx2")))
static inline __m256i mix_avx2(int imm, __m256i b, __m256i c, __m256i d) {
  switch (imm) {
    case 0xCA: return _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d)));   /* F: b ? c : d */
    case 0xE4: return _mm256_xor_si256(c, _mm256_and_si256(d, _mm256_xor_si256(b, c)));   /* G: d ? b : c */
    case 0x96: return _mm256_xor_si256(b, _mm256_xor_si256(c, d));                          /* H */
    default: return _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, _mm256_set1_epi32(-1))));  /* I */
  }
}

#define STEP_AVX2(imm, a, b, c, d, m, k, s) \
  a = _mm256_add_epi32(b, AVX2_ROL(_mm256_add_epi32(_mm256_add_epi32(a, mix_avx2(imm, b, c, d)), \
      _mm256_add_epi32(m, _mm256_set1_epi32(k))), s))

__attribute__((target("avx2")))
static void md5_lanes8_avx2(int lanes, const uint8_t *const *ptrs, const uint64_t *chunks, uint32_t *state) {
  uint32_t s[4][16];
  uint64_t most = load_states(lanes, chunks, state, s);
  __m256i A = _mm256_loadu_si256((void *)s[0]), B = _mm256_loadu_si256((void *)s[1]);
  __m256i C = _mm256_loadu_si256((void *)s[2]), D = _mm256_loadu_si256((void *)s[3]);
  for (uint64_t t = 0; t < most; t++) {
    const uint8_t *addr[8];
    unsigned active = chunk_addresses(8, lanes, t, ptrs, chunks, addr);
    int32_t on[8];
    for (int i = 0; i < 8; i++) on[i] = (active >> i) & 1 ? -1 : 0;
    __m256i keep = _mm256_loadu_si256((void *)on);
    __m256i lo = _mm256_loadu_si256((void *)addr), hi = _mm256_loadu_si256((void *)(addr + 4)), M[16];
    for (int w = 0; w < 16; w++)
      M[w] = _mm256_set_m128i(_mm256_i64gather_epi32((const int *)(intptr_t)(4 * w), hi, 1),
                              _mm256_i64gather_epi32((const int *)(intptr_t)(4 * w), lo, 1));
    __m256i a = A, b = B, c = C, d = D;
    MD5_STEPS(STEP_AVX2)
    A = _mm256_blendv_epi8(A, _mm256_add_epi32(A, a), keep); B = _mm256_blendv_epi8(B, _mm256_add_epi32(B, b), keep);
    C = _mm256_blendv_epi8(C, _mm256_add_epi32(C, c), keep); D = _mm256_blendv_epi8(D, _mm256_add_epi32(D, d), keep);
  }
  _mm256_storeu_si256((void *)s[0], A); _mm256_storeu_si256((void *)s[1], B);
  _mm256_storeu_si256((void *)s[2], C); _mm256_storeu_si256((void *)s[3], D);
  store_states(lanes, state, s);
}


#define MAX_LANES 16

enum { NO_LANES, AVX2, AVX512 };

static int cpu_lanes(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return AVX512;
  return __builtin_cpu_supports("avx2") ? AVX2 : NO_LANES;
}

static PyObject *available(PyObject *self, PyObject *args) {
  (void)self; (void)args;
  return PyBool_FromLong(cpu_lanes() != NO_LANES);
}

/* All lanes through the kernels this CPU has (AVX2: eight at a time). */
static void run_lanes(int kind, int lanes, const uint8_t *const *ptrs, const uint64_t *chunks, uint32_t *state) {
  if (kind == AVX2 && lanes == 1) {
    md5_one(ptrs[0], chunks[0], state);
  } else if (kind == AVX2) {
    for (int first = 0; first < lanes; first += 8) {
      int n = lanes - first < 8 ? lanes - first : 8;
      md5_lanes8_avx2(n, ptrs + first, chunks + first, state + first * 4);
    }
  } else if (lanes <= 4) {
    md5_lanes4(lanes, ptrs, chunks, state);
  } else if (lanes <= 8) {
    md5_lanes8(lanes, ptrs, chunks, state);
  } else {
    md5_lanes16(lanes, ptrs, chunks, state);
  }
}

static PyObject *advance(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *states, *buffers;
  int avx2_only = 0;  /* the AVX2 kernels even where AVX-512 is there: for tests and benchmarks */
  if (!PyArg_ParseTuple(args, "OO|p", &states, &buffers, &avx2_only)) return NULL;
  Py_ssize_t lanes = PySequence_Size(states);
  if (lanes < 0 || PySequence_Size(buffers) != lanes || lanes > MAX_LANES) {
    PyErr_SetString(PyExc_ValueError, "advance() takes as many states as buffers, at most 16");
    return NULL;
  }
  int kind = cpu_lanes();
  if (kind == NO_LANES) {
    PyErr_SetString(PyExc_RuntimeError, "this CPU has neither AVX-512 (F and VL) nor AVX2");
    return NULL;
  }
  if (avx2_only) kind = AVX2;
  Py_buffer state_views[MAX_LANES], data_views[MAX_LANES];
  const uint8_t *ptrs[MAX_LANES];
  uint64_t chunks[MAX_LANES];
  uint32_t state[MAX_LANES * 4];
  Py_ssize_t held = 0;
  PyObject *result = NULL;
  for (; held < lanes; held++) {
    /* each step only once the one before succeeded: no Python code runs with an exception set */
    PyObject *s = PySequence_GetItem(states, held);
    if (!s) goto done;
    int bad = PyObject_GetBuffer(s, &state_views[held], PyBUF_WRITABLE) < 0;
    Py_DECREF(s);
    if (bad) goto done;
    PyObject *b = PySequence_GetItem(buffers, held);
    bad = !b || PyObject_GetBuffer(b, &data_views[held], PyBUF_SIMPLE) < 0;
    Py_XDECREF(b);
    if (bad) {
      PyBuffer_Release(&state_views[held]);
      goto done;
    }
    if (state_views[held].len != 16 || data_views[held].len % 64) {
      PyBuffer_Release(&state_views[held]);
      PyBuffer_Release(&data_views[held]);
      PyErr_SetString(PyExc_ValueError, "each state is 16 bytes and each buffer a multiple of 64 bytes");
      goto done;
    }
    memcpy(&state[held * 4], state_views[held].buf, 16);
    ptrs[held] = data_views[held].buf;
    chunks[held] = (uint64_t)data_views[held].len / 64;
  }
  Py_BEGIN_ALLOW_THREADS
  run_lanes(kind, (int)lanes, ptrs, chunks, state);
  Py_END_ALLOW_THREADS
  for (Py_ssize_t i = 0; i < lanes; i++) memcpy(state_views[i].buf, &state[i * 4], 16);
  result = Py_None;
  Py_INCREF(result);
done:
  for (Py_ssize_t i = 0; i < held; i++) {
    PyBuffer_Release(&state_views[i]);
    PyBuffer_Release(&data_views[i]);
  }
  return result;
}

static PyMethodDef methods[] = {
  {"advance", advance, METH_VARARGS,
   "advance(states, buffers, avx2_only=False): md5 states over whole 64-byte chunks, in lanes"},
  {"available", available, METH_NOARGS, "whether this CPU runs the lanes (AVX-512 F and VL, or AVX2)"},
  {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_md5lanes", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__md5lanes(void) { return PyModule_Create(&module); }
