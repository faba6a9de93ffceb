// Output-safety and special-file checks shared by every command: what ptq may read and write.
#pragma once

#include <string>
#include <vector>

namespace ptq {

// A path given on the command line, with the flag that named it (for error messages).
struct PathArg {
  std::string flag;
  std::string path;
};

// Same file: equal normalised absolute paths (after resolving symlinks), or the same st_dev/st_ino
// (so hard links count). False when the paths differ and either does not exist.
bool same_file_or_path(const std::string& a, const std::string& b);

// Refuses an input that exists but is neither a regular file nor a folder (FIFO, device, socket):
// reading one blocks forever or never ends. IoError naming `what` and the path.
void require_regular_input(const std::string& what, const std::string& path);
// Refuses an existing output that is not a regular file (symlink, FIFO, device, folder): ptq would
// replace the node with a regular file. IoError naming `what` and the path.
void require_regular_output(const std::string& what, const std::string& path);

// The output-safety rule: every output is a regular file or new, no two outputs are the same file,
// and no output is (or lies inside a folder that is) one of the inputs. Inputs that are special
// files are refused too. Throws UsageError (exit 1) for a collision, IoError (exit 5) otherwise.
void check_output_safety(const std::vector<PathArg>& inputs, const std::vector<PathArg>& outputs);

}  // namespace ptq
