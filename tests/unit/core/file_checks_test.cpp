// check_output_safety: outputs that are one file, outputs inside an input folder, many outputs.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ptq/core/error.h"
#include "ptq/core/file_checks.h"
#include "testutil.h"

namespace ptq {
namespace {

std::string message_of(const std::vector<PathArg>& inputs, const std::vector<PathArg>& outputs) {
  try {
    check_output_safety(inputs, outputs);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(OutputSafetyCheck, TwoOutputsThatAreOneFileNameTheFirst) {
  test::TempDir t;
  std::filesystem::create_directories(t.path() / "sub");
  // Not there yet: the same normalised path.
  EXPECT_NE(message_of({}, {{"-o", t.file("a.npy")}, {"--x", t.file("b.npy")}, {"--y", t.file("sub/../a.npy")}})
                .find("is the same file as -o"),
            std::string::npos);
  // There already: a hard link is the same file under another name.
  std::ofstream(t.file("c.npy")) << "x";
  ASSERT_EQ(::link(t.file("c.npy").c_str(), t.file("d.npy").c_str()), 0);
  EXPECT_NE(message_of({}, {{"--first", t.file("c.npy")}, {"--second", t.file("d.npy")}}).find("is the same file as --first"),
            std::string::npos);
}

TEST(OutputSafetyCheck, OutputInsideAnInputFolderAndManyDistinctOutputs) {
  test::TempDir t;
  std::filesystem::create_directories(t.path() / "data");
  EXPECT_NE(message_of({{"data", t.file("data")}}, {{"-o", t.file("data/x.npy")}}).find("lies inside the input folder data"),
            std::string::npos);
  std::vector<PathArg> outs;
  for (int i = 0; i < 3000; ++i) outs.push_back({"-o", t.file("out/" + std::to_string(i) + ".npy")});
  EXPECT_EQ(message_of({{"data", t.file("data")}}, outs), "");
}

}  // namespace
}  // namespace ptq
