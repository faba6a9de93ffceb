// Image files (.jpg/.jpeg/.png/.bmp, 8-bit) to tensors through an ImageTransform.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ptq/core/tensor.h"
#include "ptq/data/preprocess.h"

namespace ptq::data {

// Decoded images larger than this many pixels are refused before decoding (hostile headers).
constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

// True for the extensions the image reader accepts (case-insensitive).
bool is_image_path(const std::string& path);

// Decodes `path` to `channels` (1: gray, 3: RGB) and runs the transform. The result has no batch
// dim: [C,H,W] for NCHW, [H,W,C] for NHWC. `dtype` is kFloat, or kUint8 when the transform's
// pixel math is the identity (values are then the resized 8-bit pixels).
// IoError naming the file when it cannot be read or decoded; UsageError when mean/std have a
// count that is neither 1 nor `channels`.
Tensor load_image(const std::string& path, const ImageTransform& t, int channels,
                  DType dtype = DType::kFloat);

// The same on encoded image bytes in memory; `label` names the source in errors.
Tensor load_image_bytes(const void* data, size_t size, const std::string& label,
                        const ImageTransform& t, int channels, DType dtype = DType::kFloat);

// The transform alone, on interleaved 8-bit pixels (`channels` per pixel, RGB order when 3).
// Steps: resize (short side / exact / letterbox, bilinear with half-pixel centers, rounded back
// to 8 bits after resizing as PIL and OpenCV do), center crop, channel order, normalize, layout.
Tensor transform_pixels(const uint8_t* pixels, int64_t width, int64_t height, int channels,
                        const ImageTransform& t, DType dtype = DType::kFloat);

}  // namespace ptq::data
