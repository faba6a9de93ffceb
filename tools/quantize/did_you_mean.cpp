// Typo suggestions for unknown flags and subcommands (Damerau-Levenshtein distance).
#include "did_you_mean.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>

namespace ptq::cli {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(1, word.size() / 4) + 1;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

namespace {

void flag_names(const CLI::App& app, std::vector<std::string>& out) {
  for (const CLI::Option* o : app.get_options()) {
    for (const std::string& n : o->get_lnames()) out.push_back("--" + n);
    for (const std::string& n : o->get_snames()) out.push_back("-" + n);
  }
}

}  // namespace

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(s->get_name());
  return names;
}

std::string suggest_flag(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> known;
  flag_names(app, known);
  const std::vector<std::string> subs = subcommand_names(app);
  for (int i = 1; i < argc; ++i)  // the subcommand given adds its flags
    if (std::find(subs.begin(), subs.end(), argv[i]) != subs.end()) {
      flag_names(*app.get_subcommand(argv[i]), known);
      break;
    }
  // A mistyped subcommand parses as the model path, and its arguments as extra positionals.
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.empty() || a[0] == '-') continue;
    const std::string c = closest(a, subs);
    if (!c.empty() && std::find(subs.begin(), subs.end(), a) == subs.end() && !std::filesystem::exists(a)) return " (did you mean quantize " + c + "?)";
    break;
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() < 2 || a[0] != '-' || a == "--") continue;
    a = a.substr(0, a.find('='));
    if (std::find(known.begin(), known.end(), a) != known.end()) continue;
    const std::string c = closest(a, known);
    if (!c.empty()) return " (did you mean " + c + "?)";
  }
  return "";
}

}  // namespace ptq::cli
