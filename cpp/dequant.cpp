// ggml block dequantisation (see dequant.hpp). Block layouts, in byte offsets within one block:
//   Q4_0 (32 values, 18 B): d f16 | qs[16]: value j<16 = low nibble of qs[j], j>=16 = high nibble of qs[j-16]
//   Q4_1 (32, 20): d | m | qs[16]                                       y = d·q + m
//   Q5_0 (32, 22): d | qh u32 | qs[16]: 5th bit of value j = bit j of qh    y = d·(q - 16)
//   Q5_1 (32, 24): d | m | qh | qs[16]                                  y = d·q + m
//   Q8_0 (32, 34): d | int8 qs[32]                                      y = q·d
//   Q2_K (256, 84): scales[16] | qs[64] | d | dmin; 16 sub-blocks of 16: y = (d·(sc & 15))·q - dmin·(sc >> 4)
//   Q3_K (256, 110): hmask[32] | qs[64] | scales[12] (16 × 6 bits) | d;  y = (d·(s - 32))·(q2 - 4·!hbit)
//   Q4_K (256, 144): d | dmin | scales[12] (8 × (6-bit scale, 6-bit min)) | qs[128]; 8 sub-blocks of 32:
//                    y = (d·sc)·q - dmin·m
//   Q5_K (256, 176): d | dmin | scales[12] | qh[32] | qs[128]           as Q4_K with a 5th bit from qh
//   Q6_K (256, 210): ql[128] | qh[64] | int8 scales[16] | d;  y = (d·s)·(q - 32), 16 sub-blocks of 16
// Every product is rounded to float32 in that order (this file is compiled with -ffp-contract=off).
#include "dequant.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "parallel.hpp"

namespace hts {

namespace {

inline float f16(const std::uint8_t* p) {
  return half_to_float(static_cast<std::uint16_t>(p[0] | (p[1] << 8)));
}

inline std::uint32_t u32le(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) |
         (std::uint32_t(p[3]) << 24);
}

void q4_0(const std::uint8_t* b, float* y) {
  const float d = f16(b);
  const std::uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

void q4_1(const std::uint8_t* b, float* y) {
  const float d = f16(b), m = f16(b + 2);
  const std::uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    const float p0 = d * static_cast<float>(qs[j] & 0x0F);
    const float p1 = d * static_cast<float>(qs[j] >> 4);
    y[j] = p0 + m;
    y[j + 16] = p1 + m;
  }
}

inline int q5_value(const std::uint8_t* qs, std::uint32_t qh, int j) {
  const int low = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
  return low | static_cast<int>(((qh >> j) & 1u) << 4);
}

void q5_0(const std::uint8_t* b, float* y) {
  const float d = f16(b);
  const std::uint32_t qh = u32le(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(q5_value(b + 6, qh, j) - 16);
}

void q5_1(const std::uint8_t* b, float* y) {
  const float d = f16(b), m = f16(b + 2);
  const std::uint32_t qh = u32le(b + 4);
  for (int j = 0; j < 32; ++j) {
    const float p = d * static_cast<float>(q5_value(b + 8, qh, j));
    y[j] = p + m;
  }
}

void q8_0(const std::uint8_t* b, float* y) {
  const float d = f16(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(b[2 + j])) * d;
}

void q2_k(const std::uint8_t* b, float* y) {
  const std::uint8_t* scales = b;
  const std::uint8_t* qs = b + 16;
  const float d = f16(b + 80), dmin = f16(b + 82);
  for (int s = 0; s < 16; ++s) {
    const float dl = d * static_cast<float>(scales[s] & 0x0F);
    const float ml = dmin * static_cast<float>(scales[s] >> 4);
    for (int i = 0; i < 16; ++i) {
      const int e = s * 16 + i, h = e / 128, k = (e % 128) / 32, l = e % 32;
      const float q = static_cast<float>((qs[32 * h + l] >> (2 * k)) & 3);
      const float p = dl * q;
      y[e] = p - ml;
    }
  }
}

void q3_k(const std::uint8_t* b, float* y) {
  const std::uint8_t* hmask = b;
  const std::uint8_t* qs = b + 32;
  const std::uint8_t* sc = b + 96;
  const float d = f16(b + 108);
  for (int s = 0; s < 16; ++s) {
    const int low = s < 8 ? (sc[s] & 0x0F) : (sc[s - 8] >> 4);
    const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
    const float dl = d * static_cast<float>((low | (high << 4)) - 32);
    for (int i = 0; i < 16; ++i) {
      const int e = s * 16 + i, h = e / 128, k = (e % 128) / 32, l = e % 32;
      const int q2 = (qs[32 * h + l] >> (2 * k)) & 3;
      const int hbit = (hmask[l] >> (e / 32)) & 1;
      y[e] = dl * static_cast<float>(q2 - (hbit ? 0 : 4));
    }
  }
}

// The 8 (scale, min) pairs of a Q4_K/Q5_K block, 6 bits each, packed in 12 bytes.
inline void k_scale_min(const std::uint8_t* s, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void q4_k(const std::uint8_t* b, float* y) {
  const float d = f16(b), dmin = f16(b + 2);
  const std::uint8_t* scales = b + 4;
  const std::uint8_t* qs = b + 16;
  for (int j = 0; j < 8; ++j) {
    int sc, mn;
    k_scale_min(scales, j, sc, mn);
    const float dj = d * static_cast<float>(sc), mj = dmin * static_cast<float>(mn);
    for (int i = 0; i < 32; ++i) {
      const int e = j * 32 + i;
      const float q = static_cast<float>((qs[32 * (e / 64) + i] >> (4 * (j % 2))) & 0x0F);
      const float p = dj * q;
      y[e] = p - mj;
    }
  }
}

void q5_k(const std::uint8_t* b, float* y) {
  const float d = f16(b), dmin = f16(b + 2);
  const std::uint8_t* scales = b + 4;
  const std::uint8_t* qh = b + 16;
  const std::uint8_t* qs = b + 48;
  for (int j = 0; j < 8; ++j) {
    int sc, mn;
    k_scale_min(scales, j, sc, mn);
    const float dj = d * static_cast<float>(sc), mj = dmin * static_cast<float>(mn);
    for (int i = 0; i < 32; ++i) {
      const int e = j * 32 + i;
      const int low = (qs[32 * (e / 64) + i] >> (4 * (j % 2))) & 0x0F;
      const int high = (qh[i] >> j) & 1;
      const float p = dj * static_cast<float>(low | (high << 4));
      y[e] = p - mj;
    }
  }
}

void q6_k(const std::uint8_t* b, float* y) {
  const std::uint8_t* ql = b;
  const std::uint8_t* qh = b + 128;
  const std::uint8_t* scales = b + 192;
  const float d = f16(b + 208);
  for (int s = 0; s < 16; ++s) {
    const float ds = d * static_cast<float>(static_cast<std::int8_t>(scales[s]));
    for (int i = 0; i < 16; ++i) {
      const int e = s * 16 + i, h = e / 128, r = e % 128;
      const int low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
      const int high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
      y[e] = ds * static_cast<float>(static_cast<std::int8_t>(low | (high << 4)) - 32);
    }
  }
}

struct Format {
  std::size_t block, bytes;
  void (*decode)(const std::uint8_t*, float*);
};

bool format_of(int type, Format& f) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::Q4_0: f = {32, 18, q4_0}; return true;
    case GgmlType::Q4_1: f = {32, 20, q4_1}; return true;
    case GgmlType::Q5_0: f = {32, 22, q5_0}; return true;
    case GgmlType::Q5_1: f = {32, 24, q5_1}; return true;
    case GgmlType::Q8_0: f = {32, 34, q8_0}; return true;
    case GgmlType::Q2_K: f = {256, 84, q2_k}; return true;
    case GgmlType::Q3_K: f = {256, 110, q3_k}; return true;
    case GgmlType::Q4_K: f = {256, 144, q4_k}; return true;
    case GgmlType::Q5_K: f = {256, 176, q5_k}; return true;
    case GgmlType::Q6_K: f = {256, 210, q6_k}; return true;
  }
  return false;
}

Format checked_format(int type) {
  Format f{};
  if (!format_of(type, f)) throw std::invalid_argument("ggml type " + std::to_string(type) + " is not decoded here");
  return f;
}

}  // namespace

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t man = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13);  // inf / NaN, payload kept
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal half: normalise (value = man · 2^-24)
    exp = 113;
    while ((man & 0x400u) == 0) {
      man <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((man & 0x3FFu) << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

bool dequant_supported(int type) {
  Format f{};
  return format_of(type, f);
}

std::size_t dequant_block_size(int type) { return checked_format(type).block; }
std::size_t dequant_type_size(int type) { return checked_format(type).bytes; }

void dequantize(int type, const std::uint8_t* src, std::size_t nbytes, float* dst, std::size_t n_out, int threads) {
  const Format f = checked_format(type);
  if (nbytes % f.bytes != 0)
    throw std::invalid_argument(std::to_string(nbytes) + " bytes is not a whole number of " +
                                std::to_string(f.bytes) + "-byte blocks");
  const std::size_t blocks = nbytes / f.bytes;
  if (blocks * f.block != n_out)
    throw std::invalid_argument(std::to_string(blocks) + " blocks hold " + std::to_string(blocks * f.block) +
                                " values, not " + std::to_string(n_out));
  constexpr std::size_t per_task = 4096;  // blocks per task: ~0.5-1 M values
  const std::size_t tasks = (blocks + per_task - 1) / per_task;
  parallel_for(tasks, threads, [&](std::size_t t) {
    const std::size_t end = std::min(blocks, (t + 1) * per_task);
    for (std::size_t i = t * per_task; i < end; ++i) f.decode(src + i * f.bytes, dst + i * f.block);
  });
}

}  // namespace hts
