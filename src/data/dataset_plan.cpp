// Dataset layouts: flat folders, per-input folders, test_data_set_* folders and list files.
#include "dataset_plan.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>

#include "ptq/core/error.h"
#include "ptq/core/file_checks.h"
#include "ptq/data/image.h"

namespace ptq::data::detail {
namespace fs = std::filesystem;
using File = Dataset::File;
using FileKind = Dataset::FileKind;

namespace {

constexpr const char* kKinds = ".npy, .npz, .pb, .jpg, .jpeg, .png or .bmp";

std::string input_names(const std::vector<InputSpec>& inputs) {
  std::string s;
  for (const InputSpec& i : inputs) s += (s.empty() ? "" : ", ") + i.name;
  return s;
}

int find_input(const std::vector<InputSpec>& inputs, const std::string& name) {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].name == name) return int(i);
  return -1;
}

// One file per sample needs a single-input model unless the file is an .npz.
void require_single_input(const std::vector<InputSpec>& inputs, const File& f) {
  PTQ_CHECK(f.kind == FileKind::kNpz || inputs.size() == 1, IoError, "the model has ",
            inputs.size(), " inputs (", input_names(inputs),
            "); give one subfolder per input name, .npz files keyed by input name, "
            "test_data_set_* folders, or a list file with one path per input");
}

struct Listing {
  std::vector<std::string> files;    // data files (by extension), sorted
  std::vector<std::string> folders;  // subfolders, sorted
};

// Hidden entries (".DS_Store", ".ipynb_checkpoints") are skipped; other non-data files too,
// so a model.onnx or README beside the data does no harm.
Listing list_dir(const std::string& dir) {
  Listing l;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  PTQ_CHECK(!ec, IoError, "cannot list folder: ", ec.message());
  for (; it != end; it.increment(ec)) {
    PTQ_CHECK(!ec, IoError, "cannot list folder: ", ec.message());
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (it->is_directory(ec)) l.folders.push_back(it->path().string());
    else if (file_kind(name)) {
      // A FIFO or device named like data would block or never end when read.
      require_regular_input("data file", it->path().string());
      l.files.push_back(it->path().string());
    }
  }
  std::sort(l.files.begin(), l.files.end());
  std::sort(l.folders.begin(), l.folders.end(), natural_less);
  return l;
}

bool is_test_data_set(const std::string& folder) {
  return fs::path(folder).filename().string().rfind("test_data_set_", 0) == 0;
}

// input_N.pb files of one test_data_set folder, in numeric order of N.
std::vector<File> plan_test_data_set(const std::string& dir) {
  return with_context(dir, [&] {
    std::vector<File> files;
    std::error_code ec;
    fs::directory_iterator it(dir, ec), end;
    PTQ_CHECK(!ec, IoError, "cannot list folder: ", ec.message());
    for (; it != end; it.increment(ec)) {
      PTQ_CHECK(!ec, IoError, "cannot list folder: ", ec.message());
      const std::string name = it->path().filename().string();
      if (name.rfind("input_", 0) != 0 || it->path().extension() != ".pb") continue;
      const std::string digits = name.substr(6, name.size() - 6 - 3);
      if (digits.empty() || digits.size() > 6 ||
          !std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(uint8_t(c)); }))
        continue;
      files.push_back(File{it->path().string(), FileKind::kTensorProto, -1, std::stoi(digits)});
    }
    PTQ_CHECK(!files.empty(), IoError, "no input_N.pb files in this test data folder");
    std::sort(files.begin(), files.end(), [](const File& a, const File& b) {
      return a.position < b.position;
    });
    return files;
  });
}

Dataset::Plan plan_input_folders(const Listing& l, const std::vector<InputSpec>& inputs) {
  std::vector<std::vector<std::string>> per_input(inputs.size());
  std::vector<std::string> folder_of(inputs.size());
  for (const std::string& folder : l.folders) {
    const std::string name = fs::path(folder).filename().string();
    const int idx = find_input(inputs, name);
    PTQ_CHECK(idx >= 0, IoError, "folder '", name, "' does not name a model input (inputs: ",
              input_names(inputs), ")");
    with_context(folder, [&] {
      Listing sub = list_dir(folder);
      PTQ_CHECK(sub.folders.empty(), IoError, "a per-input folder holds files, not subfolders");
      PTQ_CHECK(!sub.files.empty(), IoError, "empty folder: no ", kKinds, " files for input '",
                name, "'");
      for (const std::string& f : sub.files)
        PTQ_CHECK(*file_kind(f) != FileKind::kNpz, IoError, fs::path(f).filename().string(),
                  ": per-input folders hold .npy, .pb or image files, not .npz");
      per_input[size_t(idx)] = std::move(sub.files);
      folder_of[size_t(idx)] = name;
    });
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    PTQ_CHECK(!per_input[i].empty(), IoError, "no folder for input '", inputs[i].name,
              "' (one subfolder per input name is expected: ", input_names(inputs), ")");
    PTQ_CHECK(per_input[i].size() == per_input[0].size(), IoError, "folder '", folder_of[i],
              "' has ", per_input[i].size(), " files but folder '", folder_of[0], "' has ",
              per_input[0].size(), "; every input needs one file per sample");
  }
  Dataset::Plan plan(per_input[0].size());
  for (size_t s = 0; s < plan.size(); ++s)
    for (size_t i = 0; i < inputs.size(); ++i)
      plan[s].push_back(File{per_input[i][s], *file_kind(per_input[i][s]), int(i), -1});
  return plan;
}

Dataset::Plan plan_directory(const std::string& dir, const std::vector<InputSpec>& inputs,
                             DataLayout* layout) {
  const Listing l = list_dir(dir);
  Dataset::Plan plan;
  if (std::any_of(l.folders.begin(), l.folders.end(), is_test_data_set)) {
    *layout = DataLayout::kTestDataSets;
    for (const std::string& f : l.folders)  // other folders beside test_data_set_* are ignored
      if (is_test_data_set(f)) plan.push_back(plan_test_data_set(f));
    return plan;
  }
  PTQ_CHECK(!l.files.empty() || !l.folders.empty(), IoError, "empty folder: no ", kKinds,
            " files, per-input subfolders or test_data_set_* folders");
  if (l.files.empty()) {
    *layout = DataLayout::kInputFolders;
    return plan_input_folders(l, inputs);
  }
  PTQ_CHECK(l.folders.empty(), IoError, "holds both data files and subfolders ('",
            fs::path(l.folders[0]).filename().string(),
            "'); use either one file per sample or one subfolder per input");
  *layout = DataLayout::kFiles;
  for (const std::string& f : l.files) {
    File file{f, *file_kind(f), -1, -1};
    require_single_input(inputs, file);  // the folder is the context: this is not about one file
    if (file.kind != FileKind::kNpz) file.input = 0;
    plan.push_back({file});
  }
  return plan;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(uint8_t(s[b]))) ++b;
  while (e > b && std::isspace(uint8_t(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// One list-file line: a file, a test_data_set-style folder, or one path per input.
std::vector<File> plan_list_line(const std::string& line, const fs::path& base,
                                 const std::vector<InputSpec>& inputs) {
  std::vector<std::string> items;
  for (size_t start = 0;;) {
    const size_t comma = line.find(',', start);
    items.push_back(trim(line.substr(start, comma == std::string::npos ? comma : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  const auto resolve = [&](const std::string& p) {
    PTQ_CHECK(!p.empty(), IoError, "empty path");
    fs::path r = fs::path(p).is_absolute() ? fs::path(p) : base / p;
    std::error_code ec;
    PTQ_CHECK(fs::exists(r, ec), IoError, "no such file or folder '", r.string(), "'");
    require_regular_input("data file", r.string());  // a FIFO or device would block or never end
    return r.string();
  };
  const auto data_file = [&](const std::string& p) {
    const auto kind = file_kind(p);
    PTQ_CHECK(kind, IoError, "'", p, "' is not a data file (", kKinds, ")");
    return File{p, *kind, -1, -1};
  };
  std::vector<File> files;
  if (items.size() == 1) {
    const std::string p = resolve(items[0]);
    std::error_code ec;
    if (fs::is_directory(p, ec)) return plan_test_data_set(p);
    File f = data_file(p);
    require_single_input(inputs, f);
    if (f.kind != FileKind::kNpz) f.input = 0;
    return {f};
  }
  PTQ_CHECK(items.size() == inputs.size(), IoError, "line has ", items.size(),
            " paths but the model has ", inputs.size(), " inputs (", input_names(inputs), ")");
  for (size_t i = 0; i < items.size(); ++i) {
    std::string item = items[i];
    int idx = int(i);
    const size_t eq = item.find('=');
    if (eq != std::string::npos && find_input(inputs, trim(item.substr(0, eq))) >= 0) {
      idx = find_input(inputs, trim(item.substr(0, eq)));
      item = trim(item.substr(eq + 1));
    }
    File f = data_file(resolve(item));
    PTQ_CHECK(f.kind != FileKind::kNpz, IoError, "'", item,
              "': an .npz already holds every input; give it alone on its line");
    f.input = idx;
    files.push_back(f);
  }
  return files;
}

Dataset::Plan plan_list_file(const std::string& path, const std::vector<InputSpec>& inputs) {
  require_regular_input("list file", path);  // /dev/zero or a FIFO would never end
  std::ifstream in(path);
  PTQ_CHECK(in, IoError, path, ": cannot open list file");
  const fs::path base = fs::path(path).parent_path();
  Dataset::Plan plan;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    PTQ_CHECK(line.find('\0') == std::string::npos, IoError, path, ":", n,
              ": not a text list of paths (binary content); data files need one of the "
              "extensions ", kKinds);
    plan.push_back(with_context(str_cat(path, ":", n), [&] { return plan_list_line(line, base, inputs); }));
  }
  PTQ_CHECK(!plan.empty(), IoError, path, ": the list file names no samples");
  return plan;
}

}  // namespace

std::optional<FileKind> file_kind(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = char(std::tolower(uint8_t(c)));
  if (ext == ".npy") return FileKind::kNpy;
  if (ext == ".npz") return FileKind::kNpz;
  if (ext == ".pb") return FileKind::kTensorProto;
  if (is_image_path(path)) return FileKind::kImage;
  return std::nullopt;
}

bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(uint8_t(a[i])) && std::isdigit(uint8_t(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(uint8_t(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(uint8_t(b[je]))) ++je;
      // Compare by value: strip leading zeros, then shorter is smaller, then byte-wise.
      size_t is = i, js = j;
      while (is + 1 < ie && a[is] == '0') ++is;
      while (js + 1 < je && b[js] == '0') ++js;
      if (ie - is != je - js) return ie - is < je - js;
      const int c = a.compare(is, ie - is, b, js, je - js);
      if (c != 0) return c < 0;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return uint8_t(a[i]) < uint8_t(b[j]);
      ++i;
      ++j;
    }
  }
  if (a.size() - i != b.size() - j) return a.size() - i < b.size() - j;
  return a < b;  // equal by value ("a01" vs "a1"): fall back to bytes for a strict order
}

Dataset::Plan plan_dataset(const std::string& path, const std::vector<InputSpec>& inputs,
                           DataLayout* layout) {
  std::error_code ec;
  PTQ_CHECK(fs::exists(path, ec), IoError, path, ": no such file or folder");
  if (fs::is_directory(path, ec)) return with_context(path, [&] { return plan_directory(path, inputs, layout); });
  if (const auto kind = file_kind(path)) {
    *layout = DataLayout::kFiles;
    File f{path, *kind, -1, -1};
    with_context(path, [&] { require_single_input(inputs, f); });
    if (f.kind != FileKind::kNpz) f.input = 0;
    return {{f}};
  }
  *layout = DataLayout::kListFile;
  return plan_list_file(path, inputs);
}

}  // namespace ptq::data::detail
