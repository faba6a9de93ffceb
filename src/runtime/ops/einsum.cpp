// Einsum: any number of operands, explicit or implicit output, repeated letters (diagonals),
// ellipsis with broadcasting; a direct sum over the contracted letters (reference, not fast).
#include <algorithm>
#include <map>
#include <type_traits>

#include "common.h"

namespace ptq::runtime {
namespace {

// Splits "a,b" on commas and expands "..." of an operand of `rank` into `ell` reserved letters
// (chars 1..), right-aligned across operands so they broadcast.
std::string expand_ellipsis(const std::string& term, int64_t rank, int64_t& ell_rank, bool output) {
  const size_t p = term.find("...");
  if (p == std::string::npos) return term;
  const int64_t letters = static_cast<int64_t>(term.size()) - 3;
  const int64_t n = output ? ell_rank : rank - letters;
  PTQ_CHECK(n >= 0, ModelError, "einsum term '", term, "' has more letters than rank ", rank);
  if (!output) ell_rank = std::max(ell_rank, n);
  std::string e;
  for (int64_t i = 0; i < n; ++i) e += static_cast<char>(1 + (output ? i : ell_rank - n + i));
  return term.substr(0, p) + e + term.substr(p + 3);
}

class Einsum : public Kernel {
 public:
  explicit Einsum(const KernelInit& init) {
    for (char c : init.node.attr_string("equation", ""))
      if (c != ' ') eq_ += c;
    PTQ_CHECK(!eq_.empty(), ModelError, "equation is required");
  }
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const size_t arrow = eq_.find("->");
    const std::string lhs = eq_.substr(0, arrow);
    std::vector<std::string> terms;
    for (size_t s = 0;;) {
      const size_t c = lhs.find(',', s);
      terms.push_back(lhs.substr(s, c == std::string::npos ? std::string::npos : c - s));
      if (c == std::string::npos) break;
      s = c + 1;
    }
    PTQ_CHECK(terms.size() == in.size(), ModelError, "equation has ", terms.size(), " operands, node ", in.size());
    // Ellipsis ranks first (right-aligned), then the expanded terms.
    int64_t ell = 0;
    for (size_t p = 0; p < terms.size(); ++p) expand_ellipsis(terms[p], static_cast<int64_t>(required_input(in, p, "Inputs").rank()), ell, false);
    std::map<char, int64_t> size, count;
    for (size_t p = 0; p < terms.size(); ++p) {
      int64_t e2 = ell;
      terms[p] = expand_ellipsis(terms[p], static_cast<int64_t>(in[p]->rank()), e2, false);
      PTQ_CHECK(terms[p].size() == in[p]->rank(), ModelError, "term '", terms[p], "' does not match rank ", in[p]->rank());
      PTQ_CHECK(in[p]->dtype() == in[0]->dtype(), ModelError, "operands differ in dtype");
      for (size_t d = 0; d < terms[p].size(); ++d) {
        const char c = terms[p][d];
        const int64_t n = in[p]->dims()[d];
        ++count[c];
        auto it = size.find(c);
        if (it == size.end() || it->second == 1) size[c] = n;
        else PTQ_CHECK(n == 1 || n == it->second, ModelError, "letter '", c, "' has sizes ", it->second, " and ", n);
      }
    }
    std::string outs;
    if (arrow != std::string::npos) {
      outs = expand_ellipsis(eq_.substr(arrow + 2), 0, ell, true);
    } else {
      for (int64_t i = 0; i < ell; ++i) outs += static_cast<char>(1 + i);
      for (const auto& [c, n] : count)
        if (n == 1 && c > 31) outs += c;
    }
    std::string letters = outs;
    for (const auto& [c, n] : size)
      if (outs.find(c) == std::string::npos) letters += c;
    for (char c : outs) PTQ_CHECK(size.count(c), ModelError, "output letter '", c, "' is not in any input");
    const size_t no = outs.size(), nl = letters.size();
    Dims od;
    for (char c : outs) od.push_back(size[c]);
    std::vector<int64_t> lsize(nl);
    for (size_t l = 0; l < nl; ++l) lsize[l] = size[letters[l]];
    // stride[p][l]: elements of operand p per step of letter l (0 where it broadcasts or is absent).
    std::vector<std::vector<int64_t>> stride(in.size(), std::vector<int64_t>(nl, 0));
    for (size_t p = 0; p < in.size(); ++p) {
      const std::vector<int64_t> st = strides_of(in[p]->dims());
      for (size_t d = 0; d < terms[p].size(); ++d)
        if (in[p]->dims()[d] != 1) stride[p][letters.find(terms[p][d])] += st[d];
    }
    out[0] = new_tensor(in[0]->dtype(), od);
    dispatch_numeric(in[0]->dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, bool>) {
        PTQ_CHECK(false, UnsupportedError, "Einsum of bool");
      } else {
        using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
        T* y = out[0].mutable_data<T>();
        const int64_t n_out = numel_of(od);
        int64_t n_sum = 1;
        for (size_t l = no; l < nl; ++l) n_sum *= lsize[l];
        std::vector<int64_t> base(in.size()), off(in.size()), idx(nl);
        for (int64_t o = 0; o < n_out; ++o) {
          int64_t rem = o;
          std::fill(base.begin(), base.end(), 0);
          for (size_t l = no; l-- > 0;) {
            const int64_t v = rem % lsize[l];
            rem /= lsize[l];
            for (size_t p = 0; p < in.size(); ++p) base[p] += v * stride[p][l];
          }
          off = base;
          std::fill(idx.begin(), idx.end(), 0);
          Acc acc = 0;
          for (int64_t s = 0; s < n_sum; ++s) {
            Acc prod = 1;
            for (size_t p = 0; p < in.size(); ++p) prod *= static_cast<Acc>(in[p]->data<T>()[off[p]]);
            acc += prod;
            for (size_t l = nl; l-- > no;) {
              for (size_t p = 0; p < in.size(); ++p) off[p] += stride[p][l];
              if (++idx[l] < lsize[l]) break;
              for (size_t p = 0; p < in.size(); ++p) off[p] -= stride[p][l] * lsize[l];
              idx[l] = 0;
            }
          }
          y[o] = static_cast<T>(acc);
        }
      }
    });
  }

 private:
  std::string eq_;
};

}  // namespace

void register_einsum(KernelRegistry& r) { r.add("Einsum", make_kernel<Einsum>); }

}  // namespace ptq::runtime
