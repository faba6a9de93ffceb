// Temp-file-then-rename writer, so a failed run never leaves a half-written output.
#include "ptq/core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "ptq/core/error.h"

namespace ptq {

namespace fs = std::filesystem;

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  PTQ_CHECK(!path_.empty(), UsageError, "output path is empty");
  fs::path p(path_);
  fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::error_code ec;
  PTQ_CHECK(fs::is_directory(dir, ec), IoError, "cannot write '", path_, "': ",
            fs::exists(dir, ec) ? "'" : "directory '", dir.string(),
            fs::exists(dir, ec) ? "' is not a directory" : "' does not exist");
  PTQ_CHECK(!fs::is_directory(p, ec), IoError, "cannot write '", path_, "': it is a directory");
  std::string tmpl = (dir / ("." + p.filename().string() + ".tmp-XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  fd_ = ::mkstemp(buf.data());
  PTQ_CHECK(fd_ >= 0, IoError, "cannot write '", path_, "': ", std::strerror(errno));
  temp_ = buf.data();
  ::fchmod(fd_, 0644);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    PTQ_CHECK(n > 0, IoError, "cannot write '", path_, "': ", std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
    written_ += static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  PTQ_CHECK(::fsync(fd_) == 0, IoError, "cannot write '", path_, "': ", std::strerror(errno));
  PTQ_CHECK(::close(fd_) == 0, IoError, "cannot write '", path_, "': ", std::strerror(errno));
  fd_ = -1;
  PTQ_CHECK(::rename(temp_.c_str(), path_.c_str()) == 0, IoError, "cannot write '", path_,
            "': ", std::strerror(errno));
  committed_ = true;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace ptq
