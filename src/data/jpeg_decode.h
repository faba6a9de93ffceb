// Internal: JPEG decoding as Pillow does it (libjpeg-turbo, default settings).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ptq::data {

struct DecodedPixels {
  int width = 0, height = 0, channels = 0;  // channels: 1 (grayscale JPEG) or 3 (RGB)
  std::vector<uint8_t> px;                  // interleaved rows
};

// True when the bytes start with a JPEG SOI marker.
bool is_jpeg(const unsigned char* bytes, size_t size);

// libjpeg-turbo with the library defaults Pillow keeps (ISLOW integer IDCT, fancy upsampling,
// YCbCr -> RGB in libjpeg), so the pixels equal PIL.Image.open(...).convert("RGB")'s. Images of
// more than `max_pixels` are refused from the header, before decoding. IoError on corrupt data,
// on truncated files (Pillow refuses those too), and on CMYK/YCCK JPEGs.
DecodedPixels decode_jpeg(const unsigned char* bytes, size_t size, int64_t max_pixels);

}  // namespace ptq::data
