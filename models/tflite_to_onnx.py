"""Converts the kiosk's two TFLite models (MobileFaceNet, FaceAntiSpoofing) to ONNX.

Reads the TFLite flatbuffer with the `tflite` package (the parser tflite2onnx is built on) and
emits ONNX opset 13 directly. Activations keep TFLite's NHWC layout throughout; only the
layout-sensitive operators (convolutions, pooling) are wrapped in a Transpose pair, which ONNX
Runtime's transpose optimiser folds away when it loads the model. That keeps every other
operator a one-to-one mapping and makes the converter small enough to check by eye.

Operators covered — the union of what the two models use, including the ones tflite2onnx 0.4.1
lacks (LEAKY_RELU, GREATER_EQUAL, LESS, CAST, float16 DEQUANTIZE of weights, tensors stored
without a shape, FULLY_CONNECTED fed a 4-D tensor): CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D,
AVERAGE_POOL_2D, ADD, SUB, MUL, RELU, ABS, LEAKY_RELU, RESHAPE, DEQUANTIZE, STRIDED_SLICE,
FULLY_CONNECTED, GREATER_EQUAL, LESS, CAST, CONCATENATION. Anything else is an error naming the
operator.
"""

import math

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

OPSET = 13

_OPNAMES = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}

_NP = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.BOOL: np.bool_,
}
_ONNX = {
    tflite.TensorType.FLOAT32: TensorProto.FLOAT,
    tflite.TensorType.FLOAT16: TensorProto.FLOAT16,
    tflite.TensorType.INT32: TensorProto.INT32,
    tflite.TensorType.INT64: TensorProto.INT64,
    tflite.TensorType.UINT8: TensorProto.UINT8,
    tflite.TensorType.INT8: TensorProto.INT8,
    tflite.TensorType.BOOL: TensorProto.BOOL,
}

TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]


def _options(op, cls):
    opt = cls()
    table = op.BuiltinOptions()
    opt.Init(table.Bytes, table.Pos)
    return opt


class Converter:
    def __init__(self, buf, shapes):
        """`shapes` maps tensor index -> shape for tensors the file stores without one
        (taken from a reference interpreter after allocation)."""
        self.model = tflite.Model.GetRootAsModel(buf, 0)
        self.graph = self.model.Subgraphs(0)
        self.shapes = shapes
        self.nodes = []
        self.inits = {}
        self.const = {}  # tensor index -> numpy array, for constant tensors
        self.counter = 0
        for i in range(self.graph.TensorsLength()):
            t = self.graph.Tensors(i)
            data = self.model.Buffers(t.Buffer()).DataAsNumpy()
            if isinstance(data, np.ndarray) and data.size:
                self.const[i] = np.frombuffer(data.tobytes(), dtype=_NP[t.Type()]).reshape(self.shape(i))

    # -- tensors -------------------------------------------------------------------------------
    def shape(self, i):
        s = self.graph.Tensors(i).ShapeAsNumpy()
        if isinstance(s, np.ndarray) and s.size:
            return [int(x) for x in s]
        return list(self.shapes[i])

    def name(self, i):
        return "t%d_%s" % (i, self.graph.Tensors(i).Name().decode().replace("/", "_").replace(":", "_"))

    def fresh(self, hint):
        self.counter += 1
        return "%s__%d" % (hint, self.counter)

    def init(self, array, hint):
        n = self.fresh(hint)
        self.inits[n] = numpy_helper.from_array(np.ascontiguousarray(array), n)
        return n

    def value(self, i):
        """ONNX name of tensor i, materialising constants as initializers (fp16 kept as is)."""
        n = self.name(i)
        if i in self.const and n not in self.inits:
            self.inits[n] = numpy_helper.from_array(np.ascontiguousarray(self.const[i]), n)
        return n

    def node(self, op, inputs, outputs, **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=self.fresh(op), **attrs))

    def fused(self, act, out_name, final):
        """Applies a TFLite fused activation to `out_name`, writing `final`."""
        A = tflite.ActivationFunctionType
        if act == A.NONE:
            self.node("Identity", [out_name], [final])
        elif act == A.RELU:
            self.node("Relu", [out_name], [final])
        elif act == A.RELU6:
            self.node("Clip", [out_name, self.init(np.float32(0), "zero"), self.init(np.float32(6), "six")], [final])
        else:
            raise NotImplementedError("fused activation %d" % act)

    # -- operators -----------------------------------------------------------------------------
    def convert(self):
        for k in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(k)
            oc = self.model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            opname = _OPNAMES.get(code, str(code))
            handler = getattr(self, "op_" + opname.lower(), None)
            if handler is None:
                raise NotImplementedError("TFLite operator %s is not supported by this converter" % opname)
            ins = [op.Inputs(j) for j in range(op.InputsLength())]
            outs = [op.Outputs(j) for j in range(op.OutputsLength())]
            handler(op, ins, outs)
        return self

    def _pads(self, padding, in_hw, k_hw, strides, dil):
        if padding == tflite.Padding.VALID:
            return [0, 0, 0, 0]
        begin, end = [], []
        for size, k, s, d in zip(in_hw, k_hw, strides, dil):
            out = math.ceil(size / s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            begin.append(total // 2)
            end.append(total - total // 2)
        return begin + end

    def _conv(self, op, ins, outs, depthwise):
        opt = _options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
        x, w, b = ins[0], ins[1], (ins[2] if len(ins) > 2 and ins[2] >= 0 else None)
        weights = self.const_f32(w)
        in_shape = self.shape(x)
        if depthwise:
            # TFLite [1, kh, kw, C*M] -> ONNX [C*M, 1, kh, kw], grouped by input channel.
            weights = weights.transpose(3, 0, 1, 2)
            group = in_shape[3]
        else:
            # TFLite [O, kh, kw, I] -> ONNX [O, I, kh, kw].
            weights = weights.transpose(0, 3, 1, 2)
            group = 1
        strides = [opt.StrideH(), opt.StrideW()]
        dil = [opt.DilationHFactor(), opt.DilationWFactor()]
        k_hw = list(weights.shape[2:])
        pads = self._pads(opt.Padding(), in_shape[1:3], k_hw, strides, dil)
        xin = self.fresh("nchw")
        self.node("Transpose", [self.value(x)], [xin], perm=TO_NCHW)
        conv_in = [xin, self.init(weights, "w")]
        if b is not None:
            conv_in.append(self.init(self.const_f32(b), "b"))
        y = self.fresh("conv")
        self.node("Conv", conv_in, [y], strides=strides, dilations=dil, pads=pads, group=group,
                  kernel_shape=k_hw)
        yt = self.fresh("nhwc")
        self.node("Transpose", [y], [yt], perm=TO_NHWC)
        self.fused(opt.FusedActivationFunction(), yt, self.name(outs[0]))

    def const_f32(self, i):
        if i in self.const:
            return self.const[i].astype(np.float32)
        if i in self.folded:
            return self.folded[i]
        raise ValueError("tensor %s is not constant" % self.name(i))

    folded = {}

    def op_conv_2d(self, op, ins, outs):
        self._conv(op, ins, outs, depthwise=False)

    def op_depthwise_conv_2d(self, op, ins, outs):
        self._conv(op, ins, outs, depthwise=True)

    def _pool(self, op, ins, outs, kind):
        opt = _options(op, tflite.Pool2DOptions)
        x = ins[0]
        k = [opt.FilterHeight(), opt.FilterWidth()]
        s = [opt.StrideH(), opt.StrideW()]
        pads = self._pads(opt.Padding(), self.shape(x)[1:3], k, s, [1, 1])
        xin = self.fresh("nchw")
        self.node("Transpose", [self.value(x)], [xin], perm=TO_NCHW)
        y = self.fresh("pool")
        attrs = dict(kernel_shape=k, strides=s, pads=pads)
        if kind == "AveragePool":
            attrs["count_include_pad"] = 0  # TFLite averages over the valid window only
        self.node(kind, [xin], [y], **attrs)
        yt = self.fresh("nhwc")
        self.node("Transpose", [y], [yt], perm=TO_NHWC)
        self.fused(opt.FusedActivationFunction(), yt, self.name(outs[0]))

    def op_max_pool_2d(self, op, ins, outs):
        self._pool(op, ins, outs, "MaxPool")

    def op_average_pool_2d(self, op, ins, outs):
        self._pool(op, ins, outs, "AveragePool")

    def _binary(self, op, ins, outs, onnx_op, opt_cls):
        act = _options(op, opt_cls).FusedActivationFunction() if opt_cls else 0
        a, b = [self.operand(i) for i in ins]
        if opt_cls is None:
            self.node(onnx_op, [a, b], [self.name(outs[0])])
            return
        y = self.fresh(onnx_op.lower())
        self.node(onnx_op, [a, b], [y])
        self.fused(act, y, self.name(outs[0]))

    def operand(self, i):
        """A value for an elementwise operand: constants as float32 initializers if folded."""
        if i in self.folded:
            n = self.name(i)
            if n not in self.inits:
                self.inits[n] = numpy_helper.from_array(self.folded[i], n)
            return n
        return self.value(i)

    def op_add(self, op, ins, outs):
        self._binary(op, ins, outs, "Add", tflite.AddOptions)

    def op_sub(self, op, ins, outs):
        self._binary(op, ins, outs, "Sub", tflite.SubOptions)

    def op_mul(self, op, ins, outs):
        self._binary(op, ins, outs, "Mul", tflite.MulOptions)

    def op_greater_equal(self, op, ins, outs):
        self._binary(op, ins, outs, "GreaterOrEqual", None)

    def op_less(self, op, ins, outs):
        self._binary(op, ins, outs, "Less", None)

    def op_relu(self, op, ins, outs):
        self.node("Relu", [self.operand(ins[0])], [self.name(outs[0])])

    def op_abs(self, op, ins, outs):
        self.node("Abs", [self.operand(ins[0])], [self.name(outs[0])])

    def op_leaky_relu(self, op, ins, outs):
        alpha = _options(op, tflite.LeakyReluOptions).Alpha()
        self.node("LeakyRelu", [self.operand(ins[0])], [self.name(outs[0])], alpha=float(alpha))

    def op_cast(self, op, ins, outs):
        to = _ONNX[self.graph.Tensors(outs[0]).Type()]
        self.node("Cast", [self.operand(ins[0])], [self.name(outs[0])], to=to)

    def op_dequantize(self, op, ins, outs):
        x = ins[0]
        if x in self.const and self.graph.Tensors(x).Type() == tflite.TensorType.FLOAT16:
            # Weights stored as float16: fold to float32 once, at conversion time.
            self.folded[outs[0]] = self.const[x].astype(np.float32)
            return
        raise NotImplementedError("DEQUANTIZE of a non-constant or integer tensor")

    def op_reshape(self, op, ins, outs):
        out_shape = self.shape(outs[0])
        in_shape = self.shape(ins[0])
        target = list(out_shape)
        if target and in_shape and target[0] == in_shape[0]:
            target[0] = 0  # keep the batch dimension as it comes, so batch can be dynamic
        self.node("Reshape", [self.operand(ins[0]), self.init(np.array(target, np.int64), "shape")],
                  [self.name(outs[0])])

    def op_concatenation(self, op, ins, outs):
        opt = _options(op, tflite.ConcatenationOptions)
        y = self.fresh("concat")
        self.node("Concat", [self.operand(i) for i in ins], [y], axis=opt.Axis())
        self.fused(opt.FusedActivationFunction(), y, self.name(outs[0]))

    def op_strided_slice(self, op, ins, outs):
        opt = _options(op, tflite.StridedSliceOptions)
        x, begin, end, strides = ins
        b = [int(v) for v in self.const[begin]]
        e = [int(v) for v in self.const[end]]
        s = [int(v) for v in self.const[strides]]
        if opt.EllipsisMask() or opt.NewAxisMask():
            raise NotImplementedError("STRIDED_SLICE with ellipsis or new-axis masks")
        big = np.iinfo(np.int64).max
        starts, ends = [], []
        for axis in range(len(b)):
            shrink = opt.ShrinkAxisMask() >> axis & 1
            starts.append(0 if (opt.BeginMask() >> axis & 1) and not shrink else b[axis])
            if shrink:
                ends.append(b[axis] + 1 if b[axis] != -1 else big)
            elif opt.EndMask() >> axis & 1:
                ends.append(big if s[axis] > 0 else -big)
            else:
                ends.append(e[axis])
        shrink_axes = [a for a in range(len(b)) if opt.ShrinkAxisMask() >> a & 1]
        y = self.fresh("slice") if shrink_axes else self.name(outs[0])
        self.node("Slice", [self.operand(x), self.init(np.array(starts, np.int64), "starts"),
                            self.init(np.array(ends, np.int64), "ends"),
                            self.init(np.arange(len(b), dtype=np.int64), "axes"),
                            self.init(np.array(s, np.int64), "steps")], [y])
        if shrink_axes:
            self.node("Squeeze", [y, self.init(np.array(shrink_axes, np.int64), "sq")],
                      [self.name(outs[0])])

    def op_fully_connected(self, op, ins, outs):
        opt = _options(op, tflite.FullyConnectedOptions)
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 and ins[2] >= 0 else None
        weights = self.const_f32(w)  # [N, K]
        k = weights.shape[1]
        flat = self.fresh("flat")
        # TFLite flattens any input to [-1, K] before the matrix product.
        self.node("Reshape", [self.operand(x), self.init(np.array([-1, k], np.int64), "shape")], [flat])
        gemm_in = [flat, self.init(weights, "fc_w")]
        if b is not None:
            gemm_in.append(self.init(self.const_f32(b), "fc_b"))
        y = self.fresh("gemm")
        self.node("Gemm", gemm_in, [y], transB=1)
        out_shape = self.shape(outs[0])
        if opt.KeepNumDims() and len(out_shape) != 2:
            y2 = self.fresh("fc_shape")
            self.node("Reshape", [y, self.init(np.array(out_shape, np.int64), "shape")], [y2])
            y = y2
        self.fused(opt.FusedActivationFunction(), y, self.name(outs[0]))

    # -- model ---------------------------------------------------------------------------------
    def build(self, input_names, output_names, dynamic_batch=False):
        def vi(i, new_name):
            t = self.graph.Tensors(i)
            shape = self.shape(i)
            if dynamic_batch:
                shape = ["N"] + shape[1:]
            return helper.make_tensor_value_info(new_name, _ONNX[t.Type()], shape)

        g_in = [self.graph.Inputs(j) for j in range(self.graph.InputsLength())]
        g_out = [self.graph.Outputs(j) for j in range(self.graph.OutputsLength())]
        nodes = list(self.nodes)
        # Stable public names for inputs and outputs.
        for i, new in zip(g_in, input_names):
            nodes = [rename_input(n, self.name(i), new) for n in nodes]
        for i, new in zip(g_out, output_names):
            nodes.append(helper.make_node("Identity", [self.name(i)], [new], name=self.fresh("out")))
        graph = helper.make_graph(
            nodes, "clockface", [vi(i, n) for i, n in zip(g_in, input_names)],
            [vi(i, n) for i, n in zip(g_out, output_names)], list(self.inits.values()))
        model = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", OPSET)],
                                  producer_name="clockface-tflite-to-onnx")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def rename_input(node, old, new):
    for k, name in enumerate(node.input):
        if name == old:
            node.input[k] = new
    return node


def convert(tflite_path, input_names, output_names, dynamic_batch=False):
    """Returns the ONNX ModelProto for a TFLite file."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite_path))
    interp.allocate_tensors()
    shapes = {d["index"]: [int(x) for x in d["shape"]] for d in interp.get_tensor_details()}
    buf = open(tflite_path, "rb").read()
    conv = Converter(buf, shapes).convert()
    return conv.build(input_names, output_names, dynamic_batch)
