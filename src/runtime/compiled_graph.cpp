// CompiledGraph: kernel creation, last-use analysis, and the execution loop over a frame.
#include "compiled_graph.h"

#include <algorithm>
#include <optional>

#include "ptq/core/error.h"
#include "ptq/runtime/kernel_registry.h"
#include "activation_fusion.h"
#include "concat_in_place.h"
#include "qdq_fusion.h"
#include "thread_pool.h"

namespace ptq::runtime {

namespace {

// The kernel for `node`, or (fused) the kernel `op_type` of `domain` configured by the node's
// attributes; fused integer kernels are looked up at the highest opset they exist in.
std::unique_ptr<Kernel> create_kernel(const ir::Model& model, const ir::Graph& graph,
                                      const ir::Node& node, QdqMode mode, const ValueFilter& keep,
                                      const FusedGroup* fused = nullptr) {
  const std::string& dom = fused ? fused->domain : node.domain;
  const std::string& op = fused ? fused->op_type : node.op_type;
  const std::string domain = canonical_domain(dom);
  const bool foreign = fused && canonical_domain(dom) != canonical_domain(node.domain);
  const int64_t opset = foreign ? INT64_MAX - 1 : model.opset(dom);
  KernelFactory factory = KernelRegistry::builtin().find(domain, op, opset);
  PTQ_CHECK(factory, UnsupportedError, node.label(), ": no kernel for ", domain, " ", op,
            " at opset ", opset);
  KernelInit init{node, graph, opset, [&model, mode, keep](const ir::Graph& g) {
                    return std::make_shared<const CompiledGraph>(model, g, mode, keep);
                  }};
  return with_context(node.label(), [&] { return factory(init); });
}

}  // namespace

CompiledGraph::CompiledGraph(const ir::Model& model, const ir::Graph& graph, QdqMode mode,
                             ValueFilter keep)
    : graph_(graph) {
  const size_t nv = graph.id_bound_values();
  constants_.assign(nv, nullptr);
  dead_.assign(nv, false);
  for (ir::ValueId id : graph.value_ids()) {
    constants_[static_cast<size_t>(id)] = graph.constant(id);
    if (graph.value(id).kind == ir::ValueKind::kOuterScope) outer_.emplace_back(id, graph.value(id).name);
  }
  // Last reader of each value (explicit inputs and subgraph captures), by step index.
  std::vector<int> last(nv, -1);
  std::vector<ir::NodeId> order = graph.topological_order();
  // Integer-kernel mode: the fused group of each anchor node, and the nodes groups replace.
  std::vector<FusedGroup> groups;
  std::vector<int> group_of(graph.id_bound_nodes(), -1);
  std::vector<bool> skip(graph.id_bound_nodes(), false);
  if (mode == QdqMode::kIntegerKernel) {
    groups = find_fused_groups(graph);
    std::vector<bool> fused_reader(graph.id_bound_nodes(), false);
    for (size_t i = 0; i < groups.size(); ++i) {
      group_of[static_cast<size_t>(groups[i].anchor)] = static_cast<int>(i);
      fused_reader[static_cast<size_t>(groups[i].anchor)] = true;
      for (ir::NodeId a : groups[i].absorbed) skip[static_cast<size_t>(a)] = true;
    }
    // A DequantizeLinear whose every reader is a fused group need not run (its float output
    // is never read); one with other readers still runs for them.
    std::vector<bool> is_output(nv, false);
    for (ir::ValueId v : graph.outputs) is_output[static_cast<size_t>(v)] = true;
    for (ir::NodeId nid : order) {
      const ir::Node& n = graph.node(nid);
      if (n.op_type != "DequantizeLinear" || !n.is_default_domain() || n.outputs.size() != 1) continue;
      const ir::Value& v = graph.value(n.outputs[0]);
      bool only_fused = !v.uses.empty() && !is_output[static_cast<size_t>(v.id)];
      for (const ir::Use& u : v.uses) only_fused = only_fused && fused_reader[static_cast<size_t>(u.node)];
      if (only_fused) skip[static_cast<size_t>(nid)] = true;
    }
  }
  // Values read by subgraphs (never fused away: the capture is not a use).
  std::vector<bool> captured(nv, false);
  for (ir::NodeId nid : order)
    for (ir::ValueId v : graph.implicit_inputs(nid)) captured[static_cast<size_t>(v)] = true;
  // Zero Pads read only by a Conv: the Conv reads the Pad's input with the pads added (ORT's
  // PadFusion; efficientnet-lite0's 17 Pads were a fifth of its fp32 run). The Pad gets no step
  // unless the Conv's kernel declines, then it runs just before the Conv.
  struct PadBefore {
    ir::NodeId pad;
    std::vector<int64_t> pads;
  };
  std::vector<std::optional<PadBefore>> pad_before(graph.id_bound_nodes());  // by Conv
  for (ir::NodeId nid : order) {
    const ir::Node& n = graph.node(nid);
    if (n.op_type != "Pad" || skip[static_cast<size_t>(nid)] || group_of[static_cast<size_t>(nid)] >= 0) continue;
    std::optional<FusablePad> f = fusable_pad(model, graph, n, captured);
    if (!f || skip[static_cast<size_t>(f->conv)] || group_of[static_cast<size_t>(f->conv)] >= 0 ||
        (keep && keep(graph, n.outputs[0])))
      continue;
    skip[static_cast<size_t>(nid)] = true;
    pad_before[static_cast<size_t>(f->conv)] = PadBefore{nid, std::move(f->pads)};
  }
  for (ir::NodeId nid : order) {
    const ir::Node& n = graph.node(nid);
    // Constant nodes need no step: their outputs are already in constants_.
    const bool folded = n.op_type == "Constant" && n.is_default_domain() && n.outputs.size() == 1 &&
                        graph.constant(n.outputs[0]) != nullptr;
    if (folded || skip[static_cast<size_t>(nid)]) continue;
    const int gi = group_of[static_cast<size_t>(nid)];
    if (gi >= 0) {
      const FusedGroup& f = groups[static_cast<size_t>(gi)];
      steps_.push_back(Step{nid, create_kernel(model, graph, n, mode, keep, &f), f.inputs, f.outputs, {}});
    } else {
      std::unique_ptr<Kernel> kernel = create_kernel(model, graph, n, mode, keep);
      std::vector<ir::ValueId> inputs = n.inputs;
      if (const std::optional<PadBefore>& p = pad_before[static_cast<size_t>(nid)]) {
        const ir::Node& pad = graph.node(p->pad);
        if (kernel->fuse_input_pads(p->pads)) {
          inputs[0] = pad.inputs[0];
        } else {  // declined: the Pad runs first, as an ordinary step
          steps_.push_back(Step{pad.id, create_kernel(model, graph, pad, mode, keep), pad.inputs, pad.outputs, {}});
        }
      }
      steps_.push_back(Step{nid, std::move(kernel), std::move(inputs), n.outputs, {}});
      // The step then writes the activation's output; the activation gets no step.
      const std::optional<FusableActivation> a = fusable_activation(model, graph, n, captured);
      if (a && !skip[static_cast<size_t>(a->node)] && group_of[static_cast<size_t>(a->node)] < 0 &&
          !(keep && keep(graph, n.outputs[0])) && steps_.back().kernel->fuse_activation(a->act)) {
        skip[static_cast<size_t>(a->node)] = true;
        steps_.back().outputs = graph.node(a->node).outputs;
      }
      // x · f(x) (SiLU) in the kernel of f: one pass over memory instead of two.
      const std::optional<FusableMultiply> mul = fusable_multiply_by_input(graph, n, captured);
      if (mul && !skip[static_cast<size_t>(mul->node)] && group_of[static_cast<size_t>(mul->node)] < 0 &&
          !(keep && keep(graph, n.outputs[0])) && steps_.back().outputs == n.outputs &&
          steps_.back().kernel->fuse_multiply_by_input(mul->input_first)) {
        skip[static_cast<size_t>(mul->node)] = true;
        steps_.back().outputs = graph.node(mul->node).outputs;
      }
    }
  }
  fuse_concats(graph, keep, captured);
  for (size_t step = 0; step < steps_.size(); ++step) {
    for (ir::ValueId v : steps_[step].inputs)
      if (v != ir::kNone) last[static_cast<size_t>(v)] = static_cast<int>(step);
    for (ir::ValueId v : graph.implicit_inputs(steps_[step].node)) last[static_cast<size_t>(v)] = static_cast<int>(step);
  }
  std::vector<bool> kept(nv, false);  // graph outputs: never released
  for (ir::ValueId v : graph.outputs) kept[static_cast<size_t>(v)] = true;
  for (size_t v = 0; v < nv; ++v) {
    if (kept[v] || constants_[v]) continue;
    if (last[v] >= 0) steps_[static_cast<size_t>(last[v])].release.push_back(static_cast<ir::ValueId>(v));
    else dead_[v] = true;
  }
}

// A Concat whose every input is the only output of a step whose kernel can write into given
// memory (supports_run_into), read by nothing else (no other node, graph output, subgraph capture
// or `keep`), becomes one step running those kernels into its output: the fire modules of
// squeezenet1.1 concatenate two Convs' outputs, and the copy was a tenth of its fp32 run. The
// parts move to the Concat's position, which their inputs outlive (release lists are computed
// after this).
void CompiledGraph::fuse_concats(const ir::Graph& graph, const ValueFilter& keep, const std::vector<bool>& captured) {
  std::vector<int> producer(graph.id_bound_values(), -1);  // step writing each value
  for (size_t i = 0; i < steps_.size(); ++i)
    for (ir::ValueId v : steps_[i].outputs)
      if (v != ir::kNone) producer[static_cast<size_t>(v)] = static_cast<int>(i);
  std::vector<bool> is_output(graph.id_bound_values(), false);
  for (ir::ValueId v : graph.outputs) is_output[static_cast<size_t>(v)] = true;
  std::vector<bool> moved(steps_.size(), false);
  for (size_t ci = 0; ci < steps_.size(); ++ci) {
    const ir::Node& n = graph.node(steps_[ci].node);
    if (n.op_type != "Concat" || !n.is_default_domain() || n.inputs.size() < 2 || steps_[ci].inputs != n.inputs)
      continue;
    std::vector<size_t> parts;
    for (ir::ValueId v : n.inputs) {
      const int p = v == ir::kNone ? -1 : producer[static_cast<size_t>(v)];
      const bool ok = p >= 0 && !moved[static_cast<size_t>(p)] && steps_[static_cast<size_t>(p)].outputs.size() == 1 &&
                      graph.value(v).uses.size() == 1 && !is_output[static_cast<size_t>(v)] && !captured[static_cast<size_t>(v)] &&
                      !(keep && keep(graph, v)) && steps_[static_cast<size_t>(p)].kernel->supports_run_into() &&
                      std::find(parts.begin(), parts.end(), static_cast<size_t>(p)) == parts.end();
      if (!ok) {
        parts.clear();
        break;
      }
      parts.push_back(static_cast<size_t>(p));
    }
    if (parts.empty()) continue;
    std::vector<ConcatPart> kparts;
    std::vector<ir::ValueId> inputs;
    for (size_t p : parts) {
      Step& s = steps_[p];
      inputs.insert(inputs.end(), s.inputs.begin(), s.inputs.end());
      kparts.push_back(ConcatPart{std::move(s.kernel), s.inputs.size(), graph.node(s.node).label()});
      moved[p] = true;
    }
    steps_[ci].kernel = make_concat_in_place(std::move(kparts), std::move(steps_[ci].kernel), n.attr_int("axis", 1));
    steps_[ci].inputs = std::move(inputs);
  }
  size_t k = 0;
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (moved[i]) continue;
    if (k != i) steps_[k] = std::move(steps_[i]);  // (a self-move would empty the vectors)
    ++k;
  }
  steps_.resize(k);
}

Frame::Frame(const CompiledGraph& c, const Frame* p, ThreadPool& tp, const Observer* obs)
    : compiled(c), parent(p), pool(tp), observer(obs), slots(c.constants()),
      owned(c.constants().size()) {
  for (const auto& [id, name] : c.outer()) {
    PTQ_CHECK(parent, ModelError, "graph '", c.graph().name, "' reads outer-scope value '", name,
              "' but has no enclosing scope");
    const ir::ValueId pid = parent->compiled.graph().find(name);
    const Tensor* t = pid == ir::kNone ? nullptr : parent->slots[static_cast<size_t>(pid)];
    PTQ_CHECK(t, ModelError, "graph '", c.graph().name, "' reads '", name,
              "', which the enclosing scope has not computed");
    slots[static_cast<size_t>(id)] = t;
  }
}

void Frame::bind(ir::ValueId id, Tensor t) {
  const size_t i = static_cast<size_t>(id);
  owned[i] = std::move(t);
  slots[i] = &owned[i];
  if (observer) (*observer)(compiled.graph(), id, owned[i]);
}

std::vector<Tensor> Frame::execute(const KnownValues* known, ir::ValueId stop) {
  const ir::Graph& g = compiled.graph();
  KernelContext ctx(pool, *this);
  std::vector<const Tensor*> inputs;
  std::vector<Tensor> outputs;
  std::vector<bool> recomputed(known ? slots.size() : 0, false);  // partial runs: values this run computed
  std::vector<const Tensor*> given;
  for (const CompiledGraph::Step& step : compiled.steps()) {
    const ir::Node& n = g.node(step.node);
    const bool last =  // run_until: the step producing `stop` is the last one
        stop != ir::kNone && std::find(step.outputs.begin(), step.outputs.end(), stop) != step.outputs.end();
    if (known) {
      bool skip = true;
      for (ir::ValueId v : step.inputs) skip = skip && (v == ir::kNone || !recomputed[static_cast<size_t>(v)]);
      for (const ir::Attribute& a : n.attributes) skip = skip && !a.g && a.graphs.empty();  // may read outer values
      given.assign(step.outputs.size(), nullptr);
      for (size_t o = 0; skip && o < step.outputs.size(); ++o) {
        if (step.outputs[o] == ir::kNone) continue;
        given[o] = (*known)(g.value(step.outputs[o]).name);
        skip = given[o] != nullptr;
      }
      if (!skip) {
        for (ir::ValueId v : step.outputs)
          if (v != ir::kNone) recomputed[static_cast<size_t>(v)] = true;
      } else {
        for (size_t o = 0; o < step.outputs.size(); ++o) {
          const ir::ValueId v = step.outputs[o];
          if (v == ir::kNone) continue;
          Tensor t = *given[o];
          t.name.clear();
          bind(v, std::move(t));
          if (compiled.dead()[static_cast<size_t>(v)]) {
            owned[static_cast<size_t>(v)] = Tensor();
            slots[static_cast<size_t>(v)] = nullptr;
          }
        }
        for (ir::ValueId v : step.release) {
          owned[static_cast<size_t>(v)] = Tensor();
          slots[static_cast<size_t>(v)] = nullptr;
        }
        if (last) return {};
        continue;
      }
    }
    inputs.assign(step.inputs.size(), nullptr);
    for (size_t i = 0; i < step.inputs.size(); ++i) {
      if (step.inputs[i] == ir::kNone) continue;
      inputs[i] = slots[static_cast<size_t>(step.inputs[i])];
      PTQ_CHECK(inputs[i], ModelError, n.label(), ": input '", g.value(step.inputs[i]).name,
                "' has no value (not fed, or produced later)");
    }
    outputs.clear();
    outputs.resize(step.outputs.size());
    with_context(n.label(), [&] { step.kernel->run(ctx, inputs, outputs); });
    for (size_t o = 0; o < step.outputs.size(); ++o) {
      const ir::ValueId v = step.outputs[o];
      if (v == ir::kNone) continue;
      // A node declaring more outputs than its op has (Add with two), or an optional output ptq's
      // kernel does not compute: the model is wrong for ptq, not ptq itself.
      PTQ_CHECK(outputs[o].dtype() != DType::kUndefined, ModelError, n.label(), ": output ", o, " ('",
                g.value(v).name, "') is not produced by this op");
      outputs[o].name.clear();
      bind(v, std::move(outputs[o]));
      if (compiled.dead()[static_cast<size_t>(v)]) {
        owned[static_cast<size_t>(v)] = Tensor();
        slots[static_cast<size_t>(v)] = nullptr;
      }
    }
    for (ir::ValueId v : step.release) {
      owned[static_cast<size_t>(v)] = Tensor();
      slots[static_cast<size_t>(v)] = nullptr;
    }
    if (last) return {};
  }
  std::vector<Tensor> result;
  result.reserve(g.outputs.size());
  for (ir::ValueId v : g.outputs) {
    const Tensor* t = slots[static_cast<size_t>(v)];
    PTQ_CHECK(t, ModelError, "graph output '", g.value(v).name, "' was never computed");
    result.push_back(*t);
    result.back().name = g.value(v).name;
  }
  return result;
}

void KernelContext::parallel_for(size_t n, const std::function<void(size_t)>& fn) const {
  pool_.parallel_for(n, fn);
}

size_t KernelContext::threads() const { return pool_.size(); }

std::vector<Tensor> KernelContext::run_subgraph(const CompiledGraph& graph) const {
  Frame frame(graph, &frame_, frame_.pool, frame_.observer);
  return frame.execute();
}

}  // namespace ptq::runtime
