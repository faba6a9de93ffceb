// .npy reader/writer: a strict parser of the header dict, size checks before any allocation.
#include "ptq/core/npy.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>
#include <sys/stat.h>

#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"
#include "ptq/core/file_checks.h"

namespace ptq {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kMaxHeader = size_t{1} << 20;  // numpy itself refuses headers over 10 kB

struct Header {
  DType dtype = DType::kUndefined;
  Dims dims;
  size_t data_offset = 0;
  size_t data_bytes = 0;
};

struct DescrEntry {
  const char* code;  // without the byte-order character
  DType dtype;
  size_t size;
};
constexpr DescrEntry kDescrs[] = {
    {"f4", DType::kFloat, 4}, {"f8", DType::kDouble, 8}, {"i1", DType::kInt8, 1},
    {"u1", DType::kUint8, 1}, {"i2", DType::kInt16, 2},  {"u2", DType::kUint16, 2},
    {"i4", DType::kInt32, 4}, {"u4", DType::kUint32, 4}, {"i8", DType::kInt64, 8},
    {"u8", DType::kUint64, 8}, {"b1", DType::kBool, 1},
};

// A recursive-descent reader of the Python literal numpy writes:
// {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }
class DictParser {
 public:
  DictParser(const std::string& text, const std::string& label) : s_(text), label_(label) {}

  void parse(std::string& descr, bool& fortran, Dims& shape) {
    bool has_descr = false, has_fortran = false, has_shape = false;
    expect('{');
    for (;;) {
      skip_ws();
      if (peek() == '}') break;
      const std::string key = string_lit();
      expect(':');
      if (key == "descr") {
        fail_if(has_descr, "repeats 'descr'");
        descr = string_lit();
        has_descr = true;
      } else if (key == "fortran_order") {
        fail_if(has_fortran, "repeats 'fortran_order'");
        fortran = bool_lit();
        has_fortran = true;
      } else if (key == "shape") {
        fail_if(has_shape, "repeats 'shape'");
        shape = tuple_lit();
        has_shape = true;
      } else {
        fail_if(true, "has unknown key '", key, "'");
      }
      skip_ws();
      if (peek() == ',') ++pos_;
      else break;
    }
    expect('}');
    skip_ws();
    fail_if(pos_ != s_.size(), "has trailing characters after the dict");
    fail_if(!has_descr || !has_fortran || !has_shape,
            "must have the keys 'descr', 'fortran_order' and 'shape'");
  }

 private:
  template <typename... A>
  void fail_if(bool c, A&&... a) const {
    PTQ_CHECK(!c, IoError, label_, ": bad .npy header: header ", std::forward<A>(a)...);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
  }
  void expect(char c) {
    skip_ws();
    fail_if(peek() != c, "expected '", c, "' at offset ", pos_);
    ++pos_;
  }
  std::string string_lit() {
    skip_ws();
    const char q = peek();
    fail_if(q != '\'' && q != '"', "expected a string at offset ", pos_);
    const size_t end = s_.find(q, pos_ + 1);
    fail_if(end == std::string::npos, "has an unterminated string");
    std::string r = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return r;
  }
  bool bool_lit() {
    skip_ws();
    if (s_.compare(pos_, 4, "True") == 0) { pos_ += 4; return true; }
    if (s_.compare(pos_, 5, "False") == 0) { pos_ += 5; return false; }
    fail_if(true, "'fortran_order' must be True or False");
    return false;
  }
  Dims tuple_lit() {
    Dims d;
    expect('(');
    for (;;) {
      skip_ws();
      if (peek() == ')') break;
      fail_if(peek() < '0' || peek() > '9', "'shape' must be a tuple of non-negative integers");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        fail_if(v > (INT64_MAX - 9) / 10, "'shape' has a dimension that overflows");
        v = v * 10 + (s_[pos_++] - '0');
      }
      d.push_back(v);
      skip_ws();
      if (peek() == ',') ++pos_;
      else break;
    }
    expect(')');
    return d;
  }

  const std::string& s_;
  const std::string& label_;
  size_t pos_ = 0;
};

// Parses the preamble and header in `head` (the first `avail` bytes of a `total`-byte file).
// Returns 0 in data_offset when more bytes are needed for the header (`need` says how many).
Header parse_header(const unsigned char* head, size_t avail, size_t total, const std::string& label,
                    size_t* need) {
  PTQ_CHECK(avail >= 10 && std::memcmp(head, kMagic, kMagicLen) == 0, IoError, label,
            ": not a .npy file (bad magic)");
  const int major = head[6], minor = head[7];
  PTQ_CHECK((major == 1 || major == 2 || major == 3) && minor == 0, IoError, label,
            ": unsupported .npy version ", major, ".", minor);
  size_t hlen = 0, pre = 0;
  if (major == 1) {
    hlen = head[8] | (size_t{head[9]} << 8);
    pre = 10;
  } else {
    PTQ_CHECK(avail >= 12, IoError, label, ": truncated .npy preamble");
    hlen = head[8] | (size_t{head[9]} << 8) | (size_t{head[10]} << 16) | (size_t{head[11]} << 24);
    pre = 12;
  }
  PTQ_CHECK(hlen <= kMaxHeader, IoError, label, ": .npy header of ", hlen, " bytes is too large");
  PTQ_CHECK(pre + hlen <= total, IoError, label, ": truncated .npy header (", hlen,
            " bytes declared, file has ", total, ")");
  if (pre + hlen > avail) {
    *need = pre + hlen;
    return {};
  }
  std::string text(reinterpret_cast<const char*>(head) + pre, hlen);
  for (char c : text)
    PTQ_CHECK(c != '\0', IoError, label, ": bad .npy header: NUL byte");
  std::string descr;
  bool fortran = false;
  Header h;
  DictParser(text, label).parse(descr, fortran, h.dims);
  PTQ_CHECK(!fortran, IoError, label, ": fortran_order True is not supported (write C order)");
  PTQ_CHECK(descr.size() == 3, IoError, label, ": unsupported dtype descr '", descr, "'");
  const char order = descr[0];
  size_t esize = 0;
  for (const DescrEntry& e : kDescrs)
    if (descr.compare(1, 2, e.code) == 0) {
      h.dtype = e.dtype;
      esize = e.size;
    }
  PTQ_CHECK(esize != 0, IoError, label, ": unsupported dtype descr '", descr, "'");
  const bool ok_order = order == '<' || order == '=' || (esize == 1 && order == '|');
  PTQ_CHECK(ok_order, IoError, label, ": dtype descr '", descr,
            "' is not little-endian (only '<', '=' and '|' for one-byte types are supported)");
  size_t n = 1;
  for (int64_t d : h.dims) {
    PTQ_CHECK(d == 0 || n <= (SIZE_MAX / 16) / static_cast<size_t>(d), IoError, label,
              ": .npy shape overflows");
    n *= static_cast<size_t>(d);
  }
  h.data_offset = pre + hlen;
  h.data_bytes = n * esize;
  PTQ_CHECK(total - h.data_offset == h.data_bytes, IoError, label, ": .npy data is ",
            total - h.data_offset, " bytes but the header declares ", h.data_bytes, " (dtype ",
            descr, ", ", n, " elements)");
  return h;
}

void check_bools(const Tensor& t, const std::string& label) {
  if (t.dtype() != DType::kBool) return;
  const unsigned char* p = static_cast<const unsigned char*>(t.raw());
  for (size_t i = 0; i < t.numel(); ++i)
    PTQ_CHECK(p[i] <= 1, IoError, label, ": bool element ", i, " is ", int{p[i]}, ", not 0 or 1");
}

}  // namespace

Tensor read_npy_bytes(const void* data, size_t size, const std::string& label) {
  const auto* p = static_cast<const unsigned char*>(data);
  size_t need = 0;
  const Header h = parse_header(p, size, size, label, &need);
  PTQ_ASSERT(h.data_offset != 0);
  Tensor t = Tensor::from_bytes(h.dtype, h.dims, p + h.data_offset, h.data_bytes);
  check_bools(t, label);
  return t;
}

Tensor read_npy(const std::string& path) {
  require_regular_input("npy file", path);  // fopen on a FIFO would block before fstat could refuse it
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  PTQ_CHECK(f, IoError, path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  PTQ_CHECK(fstat(fileno(f.get()), &st) == 0 && S_ISREG(st.st_mode), IoError, path,
            ": not a regular file");
  const size_t total = static_cast<size_t>(st.st_size);
  std::vector<unsigned char> head(std::min<size_t>(total, 4096));
  PTQ_CHECK(std::fread(head.data(), 1, head.size(), f.get()) == head.size(), IoError, path,
            ": read error");
  size_t need = 0;
  Header h = parse_header(head.data(), head.size(), total, path, &need);
  if (h.data_offset == 0) {  // a long header: read the rest of it (bounded by kMaxHeader)
    const size_t have = head.size();
    head.resize(need);
    PTQ_CHECK(std::fread(head.data() + have, 1, need - have, f.get()) == need - have, IoError,
              path, ": read error");
    h = parse_header(head.data(), head.size(), total, path, &need);
  }
  // The size was checked against the file length, so this allocation is what the file holds.
  Tensor t = Tensor::empty(h.dtype, h.dims);
  PTQ_CHECK(std::fseek(f.get(), static_cast<long>(h.data_offset), SEEK_SET) == 0, IoError, path,
            ": seek error");
  if (h.data_bytes)
    PTQ_CHECK(std::fread(t.mutable_raw(), 1, h.data_bytes, f.get()) == h.data_bytes, IoError, path,
              ": read error (file changed while reading?)");
  check_bools(t, path);
  return t;
}

void write_npy(const std::string& path, const Tensor& t) {
  const char* descr = nullptr;
  for (const DescrEntry& e : kDescrs)
    if (e.dtype == t.dtype()) descr = e.code;
  PTQ_CHECK(descr, IoError, path, ": cannot write dtype ", dtype_name(t.dtype()), " as .npy");
  const char order = dtype_bits(t.dtype()) == 8 ? '|' : '<';
  std::string shape = "(";
  for (size_t i = 0; i < t.rank(); ++i) {
    shape += std::to_string(t.dims()[i]);
    if (t.rank() == 1 || i + 1 < t.rank()) shape += ",";
    if (i + 1 < t.rank()) shape += " ";
  }
  shape += ")";
  std::string header = std::string("{'descr': '") + order + descr +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so the data starts on a 64-byte boundary; the header ends with '\n'.
  const bool v2 = header.size() + 1 + 10 > 65535;
  const size_t pre = v2 ? 12 : 10;
  const size_t padded = (pre + header.size() + 1 + 63) / 64 * 64 - pre;
  header.append(padded - header.size() - 1, ' ');
  header += '\n';
  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(v2 ? 2 : 1);
  out += '\0';
  const size_t hl = header.size();
  out += static_cast<char>(hl & 0xff);
  out += static_cast<char>((hl >> 8) & 0xff);
  if (v2) {
    out += static_cast<char>((hl >> 16) & 0xff);
    out += static_cast<char>((hl >> 24) & 0xff);
  }
  out += header;
  AtomicFile file(path);
  file.write(out.data(), out.size());
  if (t.nbytes()) file.write(t.raw(), t.nbytes());
  file.commit();
}

}  // namespace ptq
