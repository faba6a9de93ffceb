// Writes the seed corpus of every fuzz target: make_seeds OUT_DIR -> OUT_DIR/<target>/seed_N.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "seeds.h"
#include "targets.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR\n");
    return 1;
  }
  namespace fs = std::filesystem;
  const fs::path root = argv[1];
  for (const ptq::fuzz::Target& t : ptq::fuzz::targets()) {
    const fs::path dir = root / t.name;
    fs::create_directories(dir);
    const auto all = ptq::fuzz::seeds(t.name, dir.string());
    for (size_t i = 0; i < all.size(); ++i) {
      std::ofstream(dir / ("seed_" + std::to_string(i)), std::ios::binary) << all[i];
    }
    std::printf("%s: %zu seeds in %s\n", t.name, all.size(), dir.c_str());
  }
  return 0;
}
