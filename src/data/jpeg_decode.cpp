// JPEG decoding through libjpeg-turbo's jpeglib API, errors turned into IoError via longjmp.
#include "jpeg_decode.h"

#include <csetjmp>
#include <cstdio>
#include <string>

#include <jpeglib.h>
#include <jerror.h>  // JWRN_JPEG_EOF

#include "ptq/core/error.h"

namespace ptq::data {
namespace {

// libjpeg reports fatal errors through error_exit, which must not return; it is C code, so a C++
// exception must not cross it: we longjmp back to decode_jpeg and throw from there.
struct ErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (level -1) are ignored as Pillow ignores them, except a premature end of data: Pillow
// refuses truncated files ("image file is truncated"), where libjpeg would pad with grey.
void on_message(j_common_ptr cinfo, int level) {
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) on_error(cinfo);
}

// The decode proper, in a frame without C++ objects that longjmp could skip the destructors of.
// Returns false with err->message set on failure.
bool run(jpeg_decompress_struct* cinfo, ErrorManager* err, const unsigned char* bytes, size_t size,
         int64_t max_pixels, DecodedPixels* out) {
  if (setjmp(err->jump)) return false;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, bytes, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
    std::snprintf(err->message, sizeof(err->message), "CMYK JPEGs are not supported (convert it to RGB)");
    return false;
  }
  if (int64_t(cinfo->image_width) * int64_t(cinfo->image_height) > max_pixels) {
    std::snprintf(err->message, sizeof(err->message), "image declares %ux%u pixels, more than the limit of %lld",
                  cinfo->image_width, cinfo->image_height, static_cast<long long>(max_pixels));
    return false;
  }
  const bool gray = cinfo->num_components == 1;
  cinfo->out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(cinfo);
  out->width = static_cast<int>(cinfo->output_width);
  out->height = static_cast<int>(cinfo->output_height);
  out->channels = cinfo->output_components;
  out->px.resize(size_t(out->width) * size_t(out->height) * size_t(out->channels));
  const size_t stride = size_t(out->width) * size_t(out->channels);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out->px.data() + size_t(cinfo->output_scanline) * stride;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

}  // namespace

bool is_jpeg(const unsigned char* bytes, size_t size) {
  return size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
}

DecodedPixels decode_jpeg(const unsigned char* bytes, size_t size, int64_t max_pixels) {
  jpeg_decompress_struct cinfo{};
  ErrorManager err{};
  cinfo.err = jpeg_std_error(&err.base);
  err.base.error_exit = on_error;
  err.base.emit_message = on_message;
  DecodedPixels out;
  const bool ok = run(&cinfo, &err, bytes, size, max_pixels, &out);
  jpeg_destroy_decompress(&cinfo);
  PTQ_CHECK(ok, IoError, "cannot decode JPEG (", std::string(err.message), ")");
  return out;
}

}  // namespace ptq::data
