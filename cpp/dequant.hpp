// Dequantisation of ggml block-quantised tensors (the GGUF file format) to float32.
//
// A ggml tensor of type T is a sequence of blocks; each block holds `block_size(T)` values in `type_size(T)`
// bytes: scales stored as IEEE half floats plus packed small integers. Values come out in storage order, so a
// tensor with GGUF dims (ne0, ne1) becomes a C-ordered (ne1, ne0) float32 matrix. Every formula rounds to
// float32 after each operation in the order the `gguf` Python package's numpy reference does (no fused
// multiply-add: the file is built with -ffp-contract=off), so results are bit-identical to it and to
// themselves for every thread count.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hts {

/// ggml type ids (enum ggml_type) of the formats decoded here.
enum class GgmlType : int {
  Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14,
};

/// True when `type` (a ggml type id) is decoded by `dequantize`.
bool dequant_supported(int type);

/// Values per block and bytes per block of a supported type; throws std::invalid_argument otherwise.
std::size_t dequant_block_size(int type);
std::size_t dequant_type_size(int type);

/// Decode `nbytes` bytes of blocks (a whole number of blocks) into `n_out` floats (exactly the values they
/// hold), on up to `threads` threads (0 = all cores). Throws std::invalid_argument on a size mismatch.
void dequantize(int type, const std::uint8_t* src, std::size_t nbytes, float* dst, std::size_t n_out, int threads);

/// The float32 value of an IEEE 754 binary16 bit pattern (exact; NaN payloads kept).
float half_to_float(std::uint16_t h);

}  // namespace hts
