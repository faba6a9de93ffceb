// Error context stack formatting.
#include "ptq/core/error.h"

namespace ptq {

Error::Error(ExitCode code, std::string message)
    : std::runtime_error(message), code_(code), message_(std::move(message)) {
  rebuild();
}

void Error::add_context(std::string context) {
  if (context.empty()) return;
  context_.push_back(std::move(context));
  rebuild();
}

void Error::rebuild() {
  full_.clear();
  for (auto it = context_.rbegin(); it != context_.rend(); ++it) full_ += *it + ": ";
  full_ += message_;
}

}  // namespace ptq
