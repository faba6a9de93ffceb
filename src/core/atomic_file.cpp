// Temp-file-then-rename writer and the output set, so a failed or interrupted run leaves no output.
#include "ptq/core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "ptq/core/error.h"
#include "ptq/core/file_checks.h"

namespace ptq {

namespace fs = std::filesystem;

namespace {

// Temp paths the signal handler removes: fixed storage, so the handler only reads plain memory.
constexpr int kSlots = 64;
constexpr size_t kPathMax = 4096;
char g_temp[kSlots][kPathMax];
volatile sig_atomic_t g_used[kSlots];
std::mutex g_slots_mu;

int register_temp(const std::string& path) {
  if (path.size() >= kPathMax) return -1;
  std::lock_guard<std::mutex> lock(g_slots_mu);
  for (int i = 0; i < kSlots; ++i) {
    if (g_used[i]) continue;
    std::memcpy(g_temp[i], path.c_str(), path.size() + 1);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    g_used[i] = 1;
    return i;
  }
  return -1;  // more than kSlots temps at once: still removed on failure, not on a signal
}

void unregister_temp(int slot) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(g_slots_mu);
  g_used[slot] = 0;
}

extern "C" void cleanup_and_reraise(int sig) {
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i]) ::unlink(g_temp[i]);
  // SA_RESETHAND restored the default action; the signal is delivered again once we return.
  ::raise(sig);
}

OutputSet* g_active = nullptr;
std::vector<std::string> g_inputs;  // note_input_file

}  // namespace

void note_input_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_slots_mu);
  g_inputs.push_back(path);
}

void install_temp_cleanup_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = cleanup_and_reraise;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  // Past a file size limit (ulimit -f) write() then fails with EFBIG, an I/O error that removes the
  // temps, instead of SIGXFSZ killing the process with its temps left behind.
  ::signal(SIGXFSZ, SIG_IGN);
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  PTQ_CHECK(!path_.empty(), UsageError, "output path is empty");
  fs::path p(path_);
  fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::error_code ec;
  PTQ_CHECK(fs::is_directory(dir, ec), IoError, "cannot write '", path_, "': ",
            fs::exists(dir, ec) ? "'" : "directory '", dir.string(),
            fs::exists(dir, ec) ? "' is not a directory" : "' does not exist");
  PTQ_CHECK(!fs::is_directory(p, ec), IoError, "cannot write '", path_, "': it is a directory");
  require_regular_output("cannot write", path_);
  // A short fixed name: "." + a 255-byte file name + a suffix would pass NAME_MAX.
  std::string tmpl = (dir / ".ptq-tmp-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  fd_ = ::mkostemp(buf.data(), O_CLOEXEC);
  PTQ_CHECK(fd_ >= 0, IoError, "cannot write '", path_, "': ", std::strerror(errno));
  temp_ = buf.data();
  slot_ = register_temp(temp_);
  ::fchmod(fd_, 0644);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) {
    ::unlink(temp_.c_str());
    unregister_temp(slot_);
  }
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
  if (g_active) {
    g_active->pending_.push_back({temp_, path_, slot_});
    committed_ = true;  // the set owns the temp now
    return;
  }
  PTQ_CHECK(::rename(temp_.c_str(), path_.c_str()) == 0, IoError, "cannot write '", path_,
            "': ", std::strerror(errno));
  unregister_temp(slot_);
  committed_ = true;
}

OutputSet::OutputSet() {
  PTQ_CHECK(!g_active, InternalError, "two output sets are active at once");
  g_active = this;
  // Each run notes its own inputs (a process such as the Python package runs many).
  std::lock_guard<std::mutex> lock(g_slots_mu);
  g_inputs.clear();
}

OutputSet::~OutputSet() {
  if (g_active == this) g_active = nullptr;
  for (const Pending& p : pending_) {
    ::unlink(p.temp.c_str());
    unregister_temp(p.slot);
  }
}

void OutputSet::commit() {
  g_active = nullptr;
  rename_pending();
}

void commit_finished_outputs() {
  if (g_active) g_active->rename_pending();
}

void declare_outputs(const std::vector<std::string>& paths) {
  if (!g_active) return;
  for (const std::string& p : paths)
    if (!p.empty()) g_active->declared_.push_back(p);
}

void OutputSet::rename_pending() {
  // The last line of the output-safety rule: inputs found only while running (external data).
  const auto check = [](const std::string& path) {
    for (const std::string& in : g_inputs)
      PTQ_CHECK(!same_file_or_path(path, in), UsageError, "the output '", path, "' would overwrite the input '", in,
                "'");
  };
  for (const Pending& p : pending_) check(p.path);
  for (const std::string& d : declared_) check(d);
  // A later file of the same path replaces an earlier one (e.g. a probe): only the last is kept.
  while (!pending_.empty()) {
    const Pending p = pending_.front();
    PTQ_CHECK(::rename(p.temp.c_str(), p.path.c_str()) == 0, IoError, "cannot write '", p.path, "': ",
              std::strerror(errno));
    unregister_temp(p.slot);
    pending_.erase(pending_.begin());
  }
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace ptq
