// "Did you mean": the closest known flag or subcommand to a mistyped one, for error messages.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace ptq::cli {

// Edit distance (insertions, deletions, substitutions, adjacent swaps).
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate closest to `word` when close enough to be a typo (distance <= max(1, |word|/4)),
// else "".
std::string closest(const std::string& word, const std::vector<std::string>& candidates);
// " (did you mean --calib?)" for the first argument in argv that starts with '-' and is neither
// a flag of `app` nor of the subcommand given; "" when there is no close flag.
std::string suggest_flag(const CLI::App& app, int argc, char** argv);
// Every subcommand name of `app`.
std::vector<std::string> subcommand_names(const CLI::App& app);

}  // namespace ptq::cli
