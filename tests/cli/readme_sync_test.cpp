// The README's CLI reference names every option `--help` lists, and nothing `--help` does not.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "testutil.h"

namespace ptq {
namespace {

std::set<std::string> long_flags(const std::string& text) {
  std::set<std::string> flags;
  const std::regex flag("--[a-z0-9][a-z0-9-]*");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), flag); it != std::sregex_iterator(); ++it)
    flags.insert(it->str());
  return flags;
}

std::string cli_reference() {
  const std::string readme = test::read_file(std::string(PTQ_SOURCE_DIR) + "/README.md");
  const size_t begin = readme.find("## CLI reference");
  const size_t end = readme.find("\n## ", begin + 1);
  EXPECT_NE(begin, std::string::npos) << "README has no CLI reference section";
  return readme.substr(begin, end - begin);
}

}  // namespace

TEST(ReadmeSync, CliReferenceMatchesHelp) {
  std::set<std::string> help;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--help"}, {"inspect", "--help"}, {"convert", "--help"}, {"run", "--help"},
        {"compare", "--help"}, {"calibrate", "--help"}, {"merge-stats", "--help"},
        {"preprocess", "--help"}}) {
    const auto r = test::run_quantize(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto flags = long_flags(r.out);
    help.insert(flags.begin(), flags.end());
  }
  ASSERT_GT(help.size(), 40u);
  const std::set<std::string> documented = long_flags(cli_reference());
  for (const std::string& f : help) EXPECT_TRUE(documented.count(f)) << f << " is in --help but not in the README";
  for (const std::string& f : documented) EXPECT_TRUE(help.count(f)) << f << " is in the README but not in --help";
}

}  // namespace ptq
