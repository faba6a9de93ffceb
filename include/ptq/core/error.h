// Exceptions that carry context (file, node, tensor, op) and map to the documented exit codes.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ptq {

// Process exit codes; the README documents them and scripts rely on them.
enum class ExitCode : int {
  kOk = 0,
  kUsage = 1,
  kInvalidModel = 2,
  kUnsupported = 3,
  kAccuracyBudget = 4,
  kDataOrIo = 5,
  kInternal = 70,  // a bug in ptq (EX_SOFTWARE)
};

// Concatenates anything streamable into one string (never printf-style).
template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

// Base error: a message plus a context stack, outermost first when printed.
class Error : public std::runtime_error {
 public:
  Error(ExitCode code, std::string message);
  ExitCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Prepends a context such as "model.onnx" or "node 'conv1' (Conv)".
  void add_context(std::string context);
  const char* what() const noexcept override { return full_.c_str(); }

 private:
  void rebuild();
  ExitCode code_;
  std::string message_;
  std::vector<std::string> context_;  // innermost first
  std::string full_;
};

// The model is malformed (bad protobuf, broken graph, hostile external data).
struct ModelError : Error {
  explicit ModelError(std::string m) : Error(ExitCode::kInvalidModel, std::move(m)) {}
};
// The model is valid but uses something ptq cannot handle.
struct UnsupportedError : Error {
  explicit UnsupportedError(std::string m) : Error(ExitCode::kUnsupported, std::move(m)) {}
};
// Files that cannot be read or written, bad data files.
struct IoError : Error {
  explicit IoError(std::string m) : Error(ExitCode::kDataOrIo, std::move(m)) {}
};
// Bad flags or flag combinations.
struct UsageError : Error {
  explicit UsageError(std::string m) : Error(ExitCode::kUsage, std::move(m)) {}
};
// Broken invariants inside ptq.
struct InternalError : Error {
  explicit InternalError(std::string m) : Error(ExitCode::kInternal, std::move(m)) {}
};

// Runs fn(); if it throws a ptq::Error, prepends `context` and rethrows.
template <typename Fn>
decltype(auto) with_context(const std::string& context, Fn&& fn) {
  try {
    return fn();
  } catch (Error& e) {
    e.add_context(context);
    throw;
  }
}

}  // namespace ptq

// Input/model checks: PTQ_CHECK(cond, ModelError, "tensor '", name, "' ...").
#define PTQ_CHECK(cond, ErrorType, ...)                   \
  do {                                                    \
    if (!(cond)) throw ::ptq::ErrorType(::ptq::str_cat(__VA_ARGS__)); \
  } while (0)

// Invariants: a failure is a bug in ptq.
#define PTQ_ASSERT(cond, ...)                                                        \
  do {                                                                               \
    if (!(cond))                                                                     \
      throw ::ptq::InternalError(::ptq::str_cat(__FILE__, ":", __LINE__, ": ", #cond, \
                                                " " __VA_OPT__(, ) __VA_ARGS__));    \
  } while (0)
