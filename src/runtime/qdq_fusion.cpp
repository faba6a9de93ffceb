// Matching of the QDQ node groups ONNX Runtime's CPU EP fuses (see qdq_fusion.h).
#include "qdq_fusion.h"

#include <algorithm>
#include <optional>
#include <set>

#include "ops/int8_domain.h"

namespace ptq::runtime {
namespace {

using ir::kNone;
using ir::Node;
using ir::ValueId;

bool is_8bit(DType t) { return t == DType::kInt8 || t == DType::kUint8; }

// A DequantizeLinear feeding the anchor.
struct Dq {
  ValueId q = kNone, scale = kNone, zero = kNone;
  DType qtype = DType::kUndefined;
  size_t channels = 1;  // scale elements
  int64_t axis = 1;
  size_t q_rank = 0;    // rank of the quantized tensor when known
};

// The QuantizeLinear reading the anchor's output.
struct Qout {
  ir::NodeId node = kNone;
  ValueId out = kNone, scale = kNone, zero = kNone;
  DType qtype = DType::kUndefined;
  ir::NodeId relu = kNone;  // a Relu between anchor and Q that the Q's range makes redundant
};

class Matcher {
 public:
  explicit Matcher(const ir::Graph& g) : g_(g) {
    // Values a subgraph reads from this scope are consumers the use lists do not show.
    for (ir::NodeId n : g.node_ids())
      for (ValueId v : g.implicit_inputs(n)) captured_.insert(v);
    for (ValueId v : g.outputs) captured_.insert(v);
  }

  std::optional<Dq> dq(ValueId v) const {
    if (v == kNone) return std::nullopt;
    const Node* p = g_.producer(v);
    if (!p || p->op_type != "DequantizeLinear" || !p->is_default_domain() || p->inputs.size() < 2)
      return std::nullopt;
    Dq d;
    d.q = p->inputs[0];
    d.scale = p->inputs[1];
    d.zero = p->inputs.size() > 2 ? p->inputs[2] : kNone;
    const Tensor* s = g_.constant(d.scale);
    const Tensor* z = d.zero == kNone ? nullptr : g_.constant(d.zero);
    if (!s || s->dtype() != DType::kFloat || (d.zero != kNone && !z)) return std::nullopt;
    if (p->attr_int("block_size", 0) != 0) return std::nullopt;
    d.channels = s->numel();
    d.axis = p->attr_int("axis", 1);
    const ir::Value& qv = g_.value(d.q);
    if (const Tensor* c = g_.constant(d.q)) {
      d.qtype = c->dtype();
      d.q_rank = c->rank();
    } else if (z) {
      d.qtype = z->dtype();
    } else if (qv.type.known) {
      d.qtype = qv.type.dtype;
    }
    if (qv.type.shape) d.q_rank = qv.type.shape->size();
    return d;
  }

  // An activation DQ: 8-bit with one constant scale and zero point.
  std::optional<Dq> act(ValueId v) const {
    auto d = dq(v);
    if (!d || d->channels != 1 || !is_8bit(d->qtype)) return std::nullopt;
    return d;
  }

  // A weight DQ: 8-bit, per-tensor or per-axis along `axis` of a tensor of known rank.
  std::optional<Dq> weight(ValueId v, int64_t axis) const {
    auto d = dq(v);
    if (!d || !is_8bit(d->qtype)) return std::nullopt;
    if (d->channels != 1) {
      const int64_t r = static_cast<int64_t>(d->q_rank);
      if (r == 0 || (d->axis < 0 ? d->axis + r : d->axis) != axis) return std::nullopt;
    }
    return d;
  }

  // The single QuantizeLinear consuming the anchor's only output (through a redundant Relu).
  std::optional<Qout> q(const Node& anchor) const {
    if (anchor.outputs.size() != 1 || anchor.outputs[0] == kNone) return std::nullopt;
    Qout r;
    ValueId v = anchor.outputs[0];
    const Node* user = sole_user(v);
    if (user && user->op_type == "Relu" && user->is_default_domain()) {
      r.relu = user->id;
      v = user->outputs[0];
      user = sole_user(v);
    }
    if (!user || user->op_type != "QuantizeLinear" || !user->is_default_domain() ||
        user->inputs.size() < 3 || user->inputs[0] != v)
      return std::nullopt;
    r.node = user->id;
    r.out = user->outputs[0];
    r.scale = user->inputs[1];
    r.zero = user->inputs[2];
    const Tensor* s = g_.constant(r.scale);
    const Tensor* z = g_.constant(r.zero);
    if (!s || !z || s->numel() != 1 || z->numel() != 1 || s->dtype() != DType::kFloat ||
        !is_8bit(z->dtype()))
      return std::nullopt;
    r.qtype = z->dtype();
    // ReluQuantFusion: the Relu goes only when the Q already clamps at real 0 (z == qmin).
    if (r.relu != kNone) {
      const int32_t zp = r.qtype == DType::kInt8 ? z->data<int8_t>()[0] : z->data<uint8_t>()[0];
      if (zp != (r.qtype == DType::kInt8 ? -128 : 0)) return std::nullopt;
    }
    return r;
  }

  // Whether a QuantizeLinear reads v.
  bool read_by_q(ValueId v) const {
    return std::any_of(g_.value(v).uses.begin(), g_.value(v).uses.end(),
                       [&](const ir::Use& u) { return g_.node(u.node).op_type == "QuantizeLinear"; });
  }
  bool is_constant(ValueId v) const { return g_.constant(v) != nullptr; }

  // Same constant scalar scale and zero point (ORT's IsQDQPairSupported for DropQDQ).
  bool same_params(const Dq& d, const Qout& q) const {
    const Tensor* ds = g_.constant(d.scale);
    const Tensor* dz = d.zero == kNone ? nullptr : g_.constant(d.zero);
    const Tensor* qs = g_.constant(q.scale);
    const Tensor* qz = g_.constant(q.zero);
    if (!dz || dz->dtype() != qz->dtype() || ds->numel() != 1) return false;
    const bool zeq = dz->dtype() == DType::kInt8 ? dz->data<int8_t>()[0] == qz->data<int8_t>()[0]
                                                 : dz->data<uint8_t>()[0] == qz->data<uint8_t>()[0];
    return zeq && ds->data<float>()[0] == qs->data<float>()[0];
  }

 private:
  const Node* sole_user(ValueId v) const {
    const ir::Value& val = g_.value(v);
    if (val.uses.size() != 1 || captured_.count(v)) return nullptr;
    return &g_.node(val.uses[0].node);
  }

  const ir::Graph& g_;
  std::set<ValueId> captured_;
};

// The operands of a Conv, MatMul or Gemm that ORT's selectors take, whether or not a Q follows:
// an 8-bit activation, 8-bit weights (per-axis only along the output channels, and for MatMul and
// Gemm only on 2-D weights), int8 weights under int8 activations, an optional int32 bias, and
// Gemm's beta at 1 when it has one.
struct LinearOperands {
  Dq x, w;
  std::optional<Dq> b;
};

std::optional<LinearOperands> linear_operands(const Matcher& m, const Node& n) {
  const std::string& op = n.op_type;
  const std::vector<ValueId>& in = n.inputs;
  if (in.size() < 2 || in.size() > (op == "MatMul" ? 2u : 3u)) return std::nullopt;
  const bool biased = in.size() > 2 && in[2] != kNone;
  if (op == "Gemm" && biased && n.attr_float("beta", 1.f) != 1.f) return std::nullopt;
  const int64_t waxis = op == "Conv" ? 0 : op == "MatMul" ? 1 : n.attr_int("transB", 0) ? 0 : 1;
  auto x = m.act(in[0]);
  auto w = m.weight(in[1], waxis);
  if (!x || !w) return std::nullopt;
  if (x->qtype == DType::kInt8 && w->qtype != DType::kInt8) return std::nullopt;
  if (op != "Conv" && w->channels != 1 && w->q_rank != 2) return std::nullopt;
  LinearOperands r{*x, *w, std::nullopt};
  if (biased && (!(r.b = m.dq(in[2])) || r.b->qtype != DType::kInt32)) return std::nullopt;
  return r;
}

// Gemm and MatMul over DQ'd 8-bit inputs with constant weights and no QuantizeLinear after them
// (ptq's float logits, transformer placement's MatMuls): ORT's selectors take them without an
// output Q, as a QGemm writing float and as MatMulIntegerToFloat. Unfused, they dequantized their
// weights at every run (mobilenetv2's 1280x1000 classifier: 0.5 s over the placement search).
std::optional<FusedGroup> match_float_output(const Matcher& m, const Node& n) {
  const std::string& op = n.op_type;
  if ((op != "Gemm" && op != "MatMul") || n.outputs.size() != 1 || n.outputs[0] == kNone || m.read_by_q(n.outputs[0]))
    return std::nullopt;
  const auto o = linear_operands(m, n);
  if (!o || !m.is_constant(o->w.q)) return std::nullopt;
  const Dq &x = o->x, &w = o->w;
  FusedGroup f;
  f.anchor = n.id;
  f.outputs = {n.outputs[0]};
  f.domain = "com.microsoft";
  if (op == "Gemm") {
    f.op_type = "QGemm";
    f.inputs = {x.q, x.scale, x.zero, w.q, w.scale, w.zero, o->b ? o->b->q : kNone};
  } else {
    f.op_type = "MatMulIntegerToFloat";
    f.inputs = {x.q, w.q, x.scale, w.scale, x.zero, w.zero};
  }
  return f;
}

std::optional<FusedGroup> match(const Matcher& m, const Node& n) {
  if (!n.is_default_domain()) return std::nullopt;
  const std::string& op = n.op_type;
  auto q = m.q(n);
  if (!q) return match_float_output(m, n);
  FusedGroup f;
  f.anchor = n.id;
  f.outputs = {q->out};
  f.absorbed = {q->node};
  if (q->relu != kNone) f.absorbed.push_back(q->relu);
  const std::vector<ValueId>& in = n.inputs;
  auto input = [&](size_t i) { return i < in.size() ? in[i] : kNone; };
  if (op == "Conv" || op == "MatMul" || op == "Gemm") {
    const auto o = linear_operands(m, n);
    if (!o || o->x.qtype != q->qtype) return std::nullopt;
    const Dq &x = o->x, &w = o->w;
    const ValueId bq = o->b ? o->b->q : kNone;
    if (op == "Conv") {
      f.op_type = "QLinearConv";
      f.inputs = {x.q, x.scale, x.zero, w.q, w.scale, w.zero, q->scale, q->zero, bq};
    } else if (op == "MatMul") {
      f.op_type = "QLinearMatMul";
      f.inputs = {x.q, x.scale, x.zero, w.q, w.scale, w.zero, q->scale, q->zero};
    } else {
      f.domain = "com.microsoft";
      f.op_type = "QGemm";
      f.inputs = {x.q, x.scale, x.zero, w.q, w.scale, w.zero, bq, q->scale, q->zero};
    }
    return f;
  }
  if (op == "Add" || op == "Mul") {
    auto a = m.act(input(0));
    auto b = m.act(input(1));
    if (in.size() != 2 || !a || !b || a->qtype != q->qtype || b->qtype != q->qtype) return std::nullopt;
    f.domain = "com.microsoft";
    f.op_type = op == "Add" ? "QLinearAdd" : "QLinearMul";
    f.inputs = {a->q, a->scale, a->zero, b->q, b->scale, b->zero, q->scale, q->zero};
    return f;
  }
  if (op == "GlobalAveragePool" || op == "AveragePool" || op == "Sigmoid" || op == "LeakyRelu") {
    auto x = m.act(input(0));
    if (in.size() != 1 || !x || x->qtype != q->qtype) return std::nullopt;
    f.domain = "com.microsoft";
    f.op_type = "QLinear" + op;
    f.inputs = {x->q, x->scale, x->zero, q->scale, q->zero};
    return f;
  }
  if (op == "Concat") {
    f.domain = "com.microsoft";
    f.op_type = "QLinearConcat";
    f.inputs = {q->scale, q->zero};
    for (ValueId v : in) {
      auto x = m.act(v);
      if (!x || x->qtype != q->qtype) return std::nullopt;
      f.inputs.insert(f.inputs.end(), {x->q, x->scale, x->zero});
    }
    return f;
  }
  // DropQDQ: value-preserving ops run on the integer tensor when the Q repeats the DQ's
  // parameters. MaxPool too (ORT pools the codes); its float kernel cannot take codes, so it
  // runs as ptq's own 8-bit MaxPool (same values: dequantization is monotonic).
  static const std::set<std::string> kDrop = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Gather",
                                              "MaxPool"};
  if (kDrop.count(op)) {
    auto x = m.act(input(0));
    if (!x || q->relu != kNone || !m.same_params(*x, *q)) return std::nullopt;
    if (op == "MaxPool") {
      if (in.size() != 1 || n.outputs.size() != 1) return std::nullopt;
      f.domain = kInt8Domain;
    }
    f.op_type = op;
    f.inputs = in;
    f.inputs[0] = x->q;
    return f;
  }
  return std::nullopt;
}

}  // namespace

std::vector<FusedGroup> find_fused_groups(const ir::Graph& graph) {
  const Matcher m(graph);
  std::vector<FusedGroup> groups;
  for (ir::NodeId id : graph.topological_order())
    if (auto f = match(m, graph.node(id))) groups.push_back(std::move(*f));
  return groups;
}

}  // namespace ptq::runtime
