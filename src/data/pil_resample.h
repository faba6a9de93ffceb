// Internal: Pillow's Image.resize for 8-bit images, reproduced exactly (libImaging/Resample.c).
#pragma once

#include <cstdint>
#include <vector>

namespace ptq::data {

enum class PilFilter { kBilinear, kBicubic };

// Resizes interleaved 8-bit pixels (`channels` per pixel) from in_w x in_h to out_w x out_h as
// PIL.Image.resize((out_w, out_h), BILINEAR|BICUBIC) does: separable filters widened by the
// downscale factor (antialiasing), coefficients normalised in double then rounded to 22-bit fixed
// point, horizontal pass then vertical pass, each rounded and clipped to 8 bits.
std::vector<uint8_t> pil_resize(const uint8_t* in, int64_t in_w, int64_t in_h, int channels, int64_t out_w,
                                int64_t out_h, PilFilter filter);

}  // namespace ptq::data
