// Writes a file through a temp file in the same directory, renamed into place on commit().
#pragma once

#include <cstddef>
#include <string>

namespace ptq {

// The temp file is removed if commit() is never called, so a failure leaves no output behind.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws IoError naming the path
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }
  void write(const void* data, size_t size);  // throws IoError
  size_t bytes_written() const { return written_; }
  void commit();  // fsync + rename; throws IoError

 private:
  std::string path_;
  std::string temp_;
  int fd_ = -1;
  size_t written_ = 0;
  bool committed_ = false;
};

// Same file on disk (by device and inode); false when either does not exist.
bool same_file(const std::string& a, const std::string& b);

}  // namespace ptq
