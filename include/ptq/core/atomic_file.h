// Writes a file through a temp file in the same directory; an OutputSet commits a run's files together.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace ptq {

// The temp file is removed if commit() is never called, so a failure leaves no output behind.
// While an OutputSet is active, commit() only finishes the temp file and hands it to the set,
// which renames every output of the run at its own commit() (none at all on failure).
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws IoError naming the path (also for a non-regular target)
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }
  void write(const void* data, size_t size);  // throws IoError
  size_t bytes_written() const { return written_; }
  void commit();  // fsync + rename (or hand-over to the active OutputSet); throws IoError

 private:
  std::string path_;
  std::string temp_;
  int fd_ = -1;
  int slot_ = -1;  // signal-cleanup registration
  size_t written_ = 0;
  bool committed_ = false;
};

// All outputs of one run: files committed while it is active are renamed into place only by
// commit(); its destructor removes the temps of a run that failed. One active set at a time;
// creating one forgets the inputs noted by earlier runs (note_input_file).
class OutputSet {
 public:
  OutputSet();
  ~OutputSet();
  OutputSet(const OutputSet&) = delete;
  OutputSet& operator=(const OutputSet&) = delete;
  void commit();  // renames in the order the files were finished; throws IoError

 private:
  friend class AtomicFile;
  friend void commit_finished_outputs();
  friend void declare_outputs(const std::vector<std::string>& paths);
  void rename_pending();
  std::vector<std::string> declared_;  // every output the run will write (declare_outputs)
  struct Pending {
    std::string temp, path;
    int slot;
  };
  std::vector<Pending> pending_;
};

// Renames the files the active OutputSet holds so far into place (after the same checks as
// OutputSet::commit()); the set stays active for the run's later files. No-op without a set.
void commit_finished_outputs();
// Names every output the run will write, so that an early commit_finished_outputs() checks the
// later ones against the inputs found so far too (a report aimed at the model's external data
// must fail the run before its model is renamed into place). No-op without a set.
void declare_outputs(const std::vector<std::string>& paths);

// Notes a file the run read that the command line does not name (a model's external data):
// OutputSet::commit() renames nothing when an output is one of them (UsageError, exit 1).
void note_input_file(const std::string& path);

// Installs SIGINT/SIGTERM/SIGHUP handlers that unlink every registered temp file (async-signal-safe
// calls only) and then re-raise the signal with its default action. SIGXFSZ is ignored, so a file
// size limit becomes an I/O error (EFBIG) that cleans up like any other.
void install_temp_cleanup_on_signals();

// Same file on disk (by device and inode); false when either does not exist.
bool same_file(const std::string& a, const std::string& b);

}  // namespace ptq
