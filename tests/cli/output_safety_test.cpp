// Output safety (issue 12): no output replaces an input or a special file, outputs of one run are
// committed together, temp files go on signals, and flags/inputs are validated before any work.
// Every matrix case: the documented exit code, one stderr line naming the culprit, nothing left in
// the output folder or beside the inputs, and every input byte-identical with its mtime unchanged.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "../data/fixtures.h"
#include "ptq/core/atomic_file.h"
#include "testutil.h"

namespace ptq {
namespace {

namespace fs = std::filesystem;
namespace dt = data::test;

const std::string kDemo = std::string(PTQ_SOURCE_DIR) + "/models/demo/model.onnx";

std::string digits_npy(size_t side = 8) {
  std::vector<float> v(side * side);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 17);
  return dt::npy_f32({1, 1, int64_t(side), int64_t(side)}, v);
}

struct Case {
  std::string what;
  std::vector<std::string> args;
  int exit_code;
  std::string culprit;
};

// Bytes, mtime (ns) and type of every regular file, FIFO and symlink reachable from the args.
struct Entry {
  std::string bytes;
  int64_t mtime_ns;
  mode_t mode;
  bool operator==(const Entry& o) const { return bytes == o.bytes && mtime_ns == o.mtime_ns && mode == o.mode; }
};
void note(std::map<std::string, Entry>& files, const std::string& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return;
  Entry e{"", int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, st.st_mode};
  if (S_ISREG(st.st_mode)) e.bytes = test::read_file(p);
  if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISLNK(st.st_mode)) files[p] = e;
}
std::map<std::string, Entry> snapshot(const std::vector<std::string>& args) {
  std::map<std::string, Entry> files;
  std::error_code ec;
  for (std::string a : args) {
    if (a.rfind("/dev", 0) == 0 || a.rfind("/proc", 0) == 0) continue;
    if (a.find('=') != std::string::npos) a = a.substr(a.find('=') + 1);
    note(files, a);
    if (fs::is_directory(fs::symlink_status(a, ec)))
      for (const auto& e : fs::recursive_directory_iterator(a)) note(files, e.path().string());
  }
  return files;
}
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class OutputSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = t_.file("model.onnx");
    fs::copy_file(kDemo, model_);
    out_dir_ = t_.path() / "out";
    fs::create_directories(out_dir_);
    good_ = (t_.path() / "good").string();
    fs::create_directories(good_);
    test::write_file(good_ + "/0000.npy", digits_npy());
    test::write_file(good_ + "/0001.npy", digits_npy());
    table_ = t_.file("table.json");
    labels_ = t_.file("labels.tsv");
    test::write_file(labels_, "0000.npy\t3\n0001.npy\t4\n");
    list_ = t_.file("list.txt");
    test::write_file(list_, good_ + "/0000.npy\n");
    const auto r = test::run_quantize({model_, "-o", t_.file("ok.onnx"), "--calib", good_, "--save-calib", table_,
                                       "-q", "--threads", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fs::remove(t_.file("ok.onnx"));
    // A model whose weights live in "ext.onnx.data", saved as src.onnx (the renamed ext.onnx).
    ASSERT_EQ(test::run_quantize({"convert", model_, "-o", t_.file("ext.onnx"), "--external-data", "-q"}).exit_code, 0);
    ASSERT_TRUE(fs::exists(t_.file("ext.onnx.data")));
    fs::rename(t_.file("ext.onnx"), t_.file("src.onnx"));
    // Special files and links.
    fifo_ = t_.file("fifo");
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0644), 0);
    link_ = t_.file("link.onnx");
    fs::create_symlink(t_.file("target.bin"), link_);
    test::write_file(t_.file("target.bin"), "keep me");
    hard_ = t_.file("hard.onnx");
    fs::create_hard_link(model_, hard_);
    fifo_dir_ = (t_.path() / "fifodata").string();
    fs::create_directories(fifo_dir_);
    ASSERT_EQ(::mkfifo((fifo_dir_ + "/0000.npy").c_str(), 0644), 0);
    bad_eval_ = (t_.path() / "badeval").string();
    fs::create_directories(bad_eval_);
    test::write_file(bad_eval_ + "/0000.npy", digits_npy(9));
    fifo_list_ = t_.file("fifolist.txt");
    test::write_file(fifo_list_, fifo_dir_ + "/0000.npy\n");
    run_dir_ = (t_.path() / "rundir").string();
    fs::create_directories(run_dir_);
    test::write_file(run_dir_ + "/logits.npy", digits_npy());
  }
  std::string out(const std::string& name = "o.onnx") const { return (out_dir_ / name).string(); }
  std::vector<std::string> cmd(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {model_, "-o", out(), "--calib", good_};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::string ir99() {
    onnx::ModelProto m;
    EXPECT_TRUE(m.ParseFromString(test::read_file(kDemo)));
    m.set_ir_version(99);
    test::write_file(t_.file("ir99.onnx"), m.SerializeAsString());
    return t_.file("ir99.onnx");
  }

  std::vector<Case> cases() {
    const std::string& m = model_;
    return {
        // ---- inputs destroyed or overwritten ------------------------------------------------------
        {"--log-file at the input model", cmd({"--log-file", m}), 1, "--log-file"},
        {"convert: OUTPUT.data is the input's external data",
         {"convert", t_.file("src.onnx"), "-o", t_.file("ext.onnx"), "--external-data"}, 1, "ext.onnx.data"},
        {"quantize: OUTPUT.data is the input's external data",
         {t_.file("src.onnx"), "-o", t_.file("ext.onnx"), "--external-data", "--calib", good_}, 1, "ext.onnx.data"},
        {"--report at the input's external data file",
         {t_.file("src.onnx"), "-o", out(), "--calib", good_, "--report", t_.file("ext.onnx.data")}, 1, "ext.onnx.data"},
        {"compare --report-md at model B's external data file",
         {"compare", m, t_.file("src.onnx"), "--data", good_, "--report-md", t_.file("ext.onnx.data")}, 1,
         "ext.onnx.data"},
        {"--save-calib at the model", cmd({"--save-calib", m}), 1, "--save-calib"},
        {"--report at the model", cmd({"--report", m}), 1, "--report"},
        {"--report-html at the model", cmd({"--report-html", m}), 1, "--report-html"},
        {"--report-md at the model", cmd({"--report-md", m}), 1, "--report-md"},
        {"-o at a calibration file", {m, "-o", good_ + "/0000.npy", "--calib", good_}, 1, "--calib"},
        {"-o at a calibration list file", {m, "-o", list_, "--calib", list_}, 1, "--calib"},
        {"-o at the --load-calib table", {m, "-o", table_, "--load-calib", table_}, 1, "--load-calib"},
        {"--report-html at the labels file", cmd({"--eval", good_, "--labels", labels_, "--report-html", labels_}), 1,
         "--labels"},
        {"--save-calib at the --load-calib table", {m, "-o", out(), "--load-calib", table_, "--save-calib", table_}, 1,
         "--save-calib"},
        {"-o a hard link to the model", {m, "-o", hard_, "--calib", good_}, 1, "hard.onnx"},
        {"compare --report at model A", {"compare", m, m, "--data", good_, "--report", m}, 1, "--report"},
        {"run -o . over its own -i file",
         {"run", m, "-i", "input=" + run_dir_ + "/logits.npy", "-o", run_dir_}, 1, "logits.npy"},
        // ---- special files as outputs ----------------------------------------------------------
        {"-o /dev/null", {m, "-o", "/dev/null", "--calib", good_}, 5, "/dev/null"},
        {"-o a FIFO", {m, "-o", fifo_, "--calib", good_}, 5, "FIFO"},
        {"-o a symlink", {m, "-o", link_, "--calib", good_}, 5, "symbolic link"},
        {"--report a FIFO", cmd({"--report", fifo_}), 5, "--report"},
        {"--report equal to -o", cmd({"--report", out()}), 1, "--report"},
        {"--log-file .", cmd({"--log-file", "."}), 1, "--log-file"},
        {"--log-file a FIFO", cmd({"--log-file", fifo_}), 5, "--log-file"},
        // ---- special files as inputs ------------------------------------------------------------
        {"--calib a FIFO", {m, "-o", out(), "--calib", fifo_}, 5, "FIFO"},
        {"--calib /dev/zero", {m, "-o", out(), "--calib", "/dev/zero"}, 5, "/dev/zero"},
        {"a FIFO named 0000.npy in the calibration folder", {m, "-o", out(), "--calib", fifo_dir_}, 5, "0000.npy"},
        {"--load-calib a FIFO", {m, "-o", out(), "--load-calib", fifo_}, 5, "--load-calib"},
        {"--labels a FIFO", cmd({"--eval", good_, "--labels", fifo_}), 5, "--labels"},
        {"model a FIFO", {fifo_, "-o", out(), "--calib", good_}, 5, "FIFO"},
        {"inspect a FIFO", {"inspect", fifo_}, 5, "FIFO"},
        {"a FIFO named in a calibration list file", {m, "-o", out(), "--calib", fifo_list_}, 5, "0000.npy"},
        {"run -i a FIFO", {"run", m, "-i", "input=" + fifo_, "-o", out_dir_.string()}, 5, "FIFO"},
        // ---- IR version --------------------------------------------------------------------------
        {"ir_version 99", {ir99(), "-o", out(), "--calib", good_}, 3, "ir_version 99"},
        // ---- numeric flags ----------------------------------------------------------------------
        {"--threads -1", cmd({"--threads", "-1"}), 1, "--threads"},
        {"--threads 100000", cmd({"--threads", "100000"}), 1, "--threads"},
        {"--threads 2^31", cmd({"--threads", "2147483648"}), 1, "--threads"},
        {"run --threads 100000", {"run", m, "-i", "input=" + good_ + "/0000.npy", "-o", out_dir_.string(), "--threads", "100000"},
         1, "--threads"},
        {"run --repeat -1", {"run", m, "-i", "input=" + good_ + "/0000.npy", "-o", out_dir_.string(), "--repeat", "-1"}, 1,
         "--repeat"},
        {"run --repeat 0", {"run", m, "-i", "input=" + good_ + "/0000.npy", "-o", out_dir_.string(), "--repeat", "0"}, 1,
         "--repeat"},
        {"--min-sqnr nan", cmd({"--eval", good_, "--min-sqnr", "nan"}), 1, "--min-sqnr"},
        {"--max-drop nan", cmd({"--eval", good_, "--labels", labels_, "--max-drop", "nan"}), 1, "--max-drop"},
        {"--min-agreement nan", cmd({"--eval", good_, "--min-agreement", "nan"}), 1, "--min-agreement"},
        {"--min-agreement 101", cmd({"--eval", good_, "--min-agreement", "101"}), 1, "--min-agreement"},
        {"--calib-count -1", cmd({"--calib-count", "-1"}), 1, "--calib-count"},
        {"--percentile nan", cmd({"--method", "percentile", "--percentile", "nan"}), 1, "--percentile"},
        {"compare --threads -1", {"compare", m, m, "--data", good_, "--threads", "-1"}, 1, "--threads"},
    };
  }

  test::TempDir t_;
  std::string model_, good_, table_, labels_, list_, fifo_, link_, hard_, fifo_dir_, bad_eval_, run_dir_, fifo_list_;
  fs::path out_dir_;
};

TEST_F(OutputSafety, EveryCaseFailsCleanly) {
  const std::vector<Case> all = cases();
  const std::vector<std::string> dir_before = listing(t_.path());
  const std::map<std::string, Entry> whole_before = snapshot({t_.path().string()});
  for (const Case& c : all) {
    SCOPED_TRACE(c.what);
    std::vector<std::string> args = c.args;
    args.push_back("-q");
    const bool threads_case = c.what.find("--threads") != std::string::npos;
    if (!threads_case && args[0] != "convert" && args[0] != "inspect") {
      args.push_back("--threads");
      args.push_back("1");
    }
    const auto before = snapshot(c.args);
    const auto r = test::run_quantize(args);
    if (std::getenv("PTQ_MATRIX_PRINT")) std::printf("%-50s exit %d  %s", c.what.c_str(), r.exit_code, r.err.c_str());
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(c.culprit), std::string::npos) << "culprit '" << c.culprit << "' in: " << r.err;
    EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.find("error: ") == std::string::npos) << "error on stdout: " << r.out;
    EXPECT_TRUE(listing(out_dir_).empty()) << "left in the output folder: " << ::testing::PrintToString(listing(out_dir_));
    EXPECT_TRUE(snapshot(c.args) == before) << "an input file changed (bytes, mtime or type)";
    EXPECT_EQ(listing(t_.path()), dir_before) << "files appeared beside the inputs";
  }
  EXPECT_TRUE(snapshot({t_.path().string()}) == whole_before) << "a file in the test folder changed";
}

// A legal 245-byte file name: the temp file beside it must fit NAME_MAX (255) too.
TEST_F(OutputSafety, LongOutputNameWorks) {
  const std::string name = std::string(240, 'a') + ".onnx";
  const auto r = test::run_quantize({model_, "-o", out(name), "--calib", good_, "-q", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(listing(out_dir_), std::vector<std::string>{name});
}

// A write failing late (file size limit, as a full disk) leaves none of the run's outputs: the
// calibration table finished before the model is not renamed into place either.
TEST_F(OutputSafety, WriteFailureLeavesNoOutput) {
  const std::string q = std::getenv("PTQ_QUANTIZE") ? std::getenv("PTQ_QUANTIZE") : PTQ_QUANTIZE_DEFAULT;
  // --no-reduce-range: a table without the per-channel maxima pair-safe weight scales record
  // (the Gemm's 256 inputs), which would not fit the limit.
  const auto r = test::run_quantize({model_, "-o", t_.file("small.onnx"), "--calib", good_, "--save-calib",
                                     t_.file("small.json"), "--no-reduce-range", "-q", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_LT(test::read_file(t_.file("small.json")).size(), 4096u);
  ASSERT_GT(test::read_file(t_.file("small.onnx")).size(), 5120u);
  // bash's ulimit -f counts KiB: the table fits, the model (about 6 KB) does not.
  const std::string command = "bash -c 'ulimit -f 5; exec \"" + q + "\" \"" + model_ + "\" -o \"" + out() +
                              "\" --calib \"" + good_ + "\" --save-calib \"" + out("t.json") +
                              "\" --no-reduce-range -q --threads 1' 2>/dev/null";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal: " << status;
  EXPECT_EQ(WEXITSTATUS(status), 5);
  EXPECT_TRUE(listing(out_dir_).empty()) << ::testing::PrintToString(listing(out_dir_));
}

// Model first (issue 15): the int8 model and the table are complete and committed before the
// report runs, so an evaluation that fails on a bad sample keeps them (and writes no report);
// without --auto-fallback nothing the report finds can change the model.
TEST_F(OutputSafety, EvaluationFailureKeepsTheModelWrittenBeforeTheReport) {
  const auto r = test::run_quantize(
      cmd({"--save-calib", out("t.json"), "--eval", bad_eval_, "--report", out("r.json"), "-q", "--threads", "1"}));
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("0000.npy"), std::string::npos) << r.err;
  EXPECT_EQ(listing(out_dir_), (std::vector<std::string>{"o.onnx", "t.json"}));
  const auto again = test::run_quantize({"inspect", out(), "--check"});
  EXPECT_EQ(again.exit_code, 0) << again.err;  // a complete, valid model
  // With --auto-fallback the report decides the model: a failure there still leaves nothing.
  fs::remove(out());
  fs::remove(out("t.json"));
  const auto fb = test::run_quantize(cmd({"--save-calib", out("t.json"), "--eval", bad_eval_, "--auto-fallback",
                                          "--min-sqnr", "10", "-q", "--threads", "1"}));
  EXPECT_EQ(fb.exit_code, 5) << fb.err;
  EXPECT_TRUE(listing(out_dir_).empty()) << ::testing::PrintToString(listing(out_dir_));
}

// -q: a failing run prints exactly its error line (no progress lines from the accuracy report).
TEST_F(OutputSafety, QuietFailingEvalPrintsOneLine) {
  const auto loud = test::run_quantize(cmd({"--eval", bad_eval_, "--threads", "1"}));
  EXPECT_EQ(loud.exit_code, 5);
  const auto r = test::run_quantize(cmd({"--eval", bad_eval_, "--threads", "1", "-q"}));
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_GT(std::count(loud.err.begin(), loud.err.end(), '\n'), 1) << "the test needs a run that prints progress";
}

// Outputs finished inside an OutputSet appear only at its commit(); a set destroyed without a
// commit (a failed run) leaves neither the files nor their temps.
TEST(OutputSet, CommitsTogetherOrNotAtAll) {
  test::TempDir t;
  {
    OutputSet set;
    AtomicFile a(t.file("a"));
    a.write("1", 1);
    a.commit();
    AtomicFile b(t.file("b"));
    b.write("2", 1);
    b.commit();
    EXPECT_EQ(listing(t.path()).size(), 2u);  // two temps
    EXPECT_FALSE(fs::exists(t.file("a")));
  }
  EXPECT_TRUE(listing(t.path()).empty());
  {
    OutputSet set;
    AtomicFile a(t.file("a"));
    a.write("1", 1);
    a.commit();
    set.commit();
  }
  EXPECT_EQ(listing(t.path()), std::vector<std::string>{"a"});
}

// SIGINT/SIGTERM/SIGHUP remove registered temps, then the process dies of the signal.
TEST(OutputSet, SignalRemovesTempFiles) {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    test::TempDir t;
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      install_temp_cleanup_on_signals();
      AtomicFile a(t.file("a"));
      a.write("x", 1);
      OutputSet set;
      AtomicFile b(t.file("b"));
      b.write("y", 1);
      b.commit();  // pending in the set
      ::raise(sig);
      ::_exit(0);  // not reached
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << "signal " << sig << " status " << status;
    EXPECT_TRUE(listing(t.path()).empty()) << ::testing::PrintToString(listing(t.path()));
  }
}

}  // namespace
}  // namespace ptq
