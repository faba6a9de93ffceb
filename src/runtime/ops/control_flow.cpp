// If: runs the chosen branch subgraph with the enclosing scope visible (outer-scope values).
#include "../compiled_graph.h"
#include "common.h"

namespace ptq::runtime {
namespace {

class If : public Kernel {
 public:
  explicit If(const KernelInit& init) {
    const ir::Attribute* t = init.node.attr("then_branch");
    const ir::Attribute* e = init.node.attr("else_branch");
    PTQ_CHECK(t && t->g && e && e->g, ModelError, "If needs then_branch and else_branch graphs");
    then_ = with_context("then_branch", [&] { return init.compile(*t->g); });
    else_ = with_context("else_branch", [&] { return init.compile(*e->g); });
    PTQ_CHECK(t->g->outputs.size() == init.node.outputs.size() &&
                  e->g->outputs.size() == init.node.outputs.size(),
              ModelError, "branches must have one output per If output (", init.node.outputs.size(), ")");
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& c = required_input(in, 0, "cond");
    PTQ_CHECK(c.dtype() == DType::kBool && c.numel() == 1, ModelError,
              "cond must be a one-element bool tensor");
    const bool take = c.data<bool>()[0];
    std::vector<Tensor> r = with_context(take ? "then_branch" : "else_branch",
                                         [&] { return ctx.run_subgraph(take ? *then_ : *else_); });
    for (size_t i = 0; i < out.size(); ++i) out[i] = std::move(r[i]);
  }

 private:
  std::shared_ptr<const CompiledGraph> then_, else_;
};

}  // namespace

void register_control_flow(KernelRegistry& r) { r.add("If", make_kernel<If>); }

}  // namespace ptq::runtime
