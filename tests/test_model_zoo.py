"""Our Taylor importance inside Torch-Pruning on real architectures (torchvision and timm, random
init, small inputs): each model is pruned by 50 % of its channels through ``MetaPruner`` (uniform
ratio, the classifier kept, ``num_heads`` given for attention) with ours and with Torch-Pruning's
``GroupTaylorImportance`` on the same batches. Wherever Torch-Pruning's Taylor prunes, ours must
prune the same: the same output channels in every layer, the same MACs and parameters, and a model
that still runs with the right output shape.

Runs in the second venv (torch 2.14.1, torchvision, timm, torch-pruning: .ci/check_zoo.sh);
skipped where torchvision is missing (it does not load beside the CPU torch 2.13 of the main
venv). CI runs the models not marked slow; ``-m slow`` runs the rest of the zoo
(docs/model_zoo.md holds the whole table)."""
import copy

import pytest
import torch
import torch.nn.functional as F

tp = pytest.importorskip("torch_pruning")
torchvision = pytest.importorskip("torchvision", reason="the zoo runs in the torchvision venv (.ci/check_zoo.sh)")
timm = pytest.importorskip("timm")

from pyprune_ext.integrations.torch_pruning import TaylorChannelImportance  # noqa: E402

slow = pytest.mark.slow

# name -> (constructor, input size, marks)
MODELS = {
    "tv/resnet18": (lambda: torchvision.models.resnet18(), 64, ()),
    "tv/resnext50_32x4d": (lambda: torchvision.models.resnext50_32x4d(), 64, (slow,)),
    "tv/wide_resnet50_2": (lambda: torchvision.models.wide_resnet50_2(), 64, (slow,)),
    "tv/mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(), 64, ()),
    "tv/mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(), 64, ()),
    "tv/efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(), 64, ()),
    "tv/efficientnet_v2_s": (lambda: torchvision.models.efficientnet_v2_s(), 64, (slow,)),
    "tv/densenet121": (lambda: torchvision.models.densenet121(), 64, ()),
    "tv/vgg11": (lambda: torchvision.models.vgg11(), 64, ()),
    "tv/vgg11_bn": (lambda: torchvision.models.vgg11_bn(), 64, (slow,)),
    "tv/googlenet": (lambda: torchvision.models.googlenet(aux_logits=False, init_weights=True), 64, (slow,)),
    "tv/inception_v3": (lambda: torchvision.models.inception_v3(aux_logits=False, init_weights=True), 96, (slow,)),
    "tv/squeezenet1_0": (lambda: torchvision.models.squeezenet1_0(), 64, (slow,)),
    "tv/mnasnet0_5": (lambda: torchvision.models.mnasnet0_5(), 64, (slow,)),
    "tv/regnet_x_400mf": (lambda: torchvision.models.regnet_x_400mf(), 64, (slow,)),
    "tv/regnet_y_400mf": (lambda: torchvision.models.regnet_y_400mf(), 64, ()),
    "tv/convnext_tiny": (lambda: torchvision.models.convnext_tiny(), 64, ()),
    "tv/alexnet": (lambda: torchvision.models.alexnet(), 96, (slow,)),
    "tv/vit_b_16": (lambda: torchvision.models.vit_b_16(), 224, (slow,)),
    "timm/resnet18d": (lambda: timm.create_model("resnet18d"), 64, (slow,)),
    "timm/efficientnet_b0": (lambda: timm.create_model("efficientnet_b0"), 64, (slow,)),
    "timm/convnext_atto": (lambda: timm.create_model("convnext_atto"), 64, (slow,)),
    "timm/regnetz_b16": (lambda: timm.create_model("regnetz_b16"), 64, (slow,)),
    "timm/repvgg_a0": (lambda: timm.create_model("repvgg_a0"), 64, (slow,)),
    "timm/ghostnet_100": (lambda: timm.create_model("ghostnet_100"), 64, ()),
    "timm/vit_tiny_patch16_224": (lambda: timm.create_model("vit_tiny_patch16_224", img_size=64), 64, ()),
    "timm/deit_tiny_patch16_224": (lambda: timm.create_model("deit_tiny_patch16_224", img_size=64), 64, ()),
}


class RootSizedTaylor(tp.importance.GroupTaylorImportance):
    """Torch-Pruning's Taylor importance with its group reduction sized to the group's root. Its
    own sizes the result after its first vote, which is the root except where it skips the root:
    it skips depthwise convs, so in GhostNet's ghost modules its first vote is the next layer's
    concatenated input (twice the root) and its scores come out twice as long as the group (see
    test_torch_prunings_own_taylor_missizes_ghost_groups). Everywhere else the two are the same."""

    def __call__(self, group):
        self._root_size = len(group[0].idxs)
        return super().__call__(group)

    def _reduce(self, group_imp, group_idxs):
        reduced = super()._reduce(group_imp, group_idxs)
        if isinstance(reduced, torch.Tensor) and reduced.numel() > self._root_size:
            assert not reduced[self._root_size:].any()   # only the root's channels ever got a vote
            reduced = reduced[:self._root_size]
        return reduced


def attention_heads(model):
    """{qkv layer: heads} for Torch-Pruning's num_heads (timm Attention, torchvision's MHA)."""
    heads = {}
    for m in model.modules():
        if hasattr(m, "qkv") and hasattr(m, "num_heads"):
            heads[m.qkv] = m.num_heads
        if isinstance(m, torch.nn.MultiheadAttention):
            heads[m] = m.num_heads
    return heads


def after_pruning(model, pruner):
    """What Torch-Pruning's examples set after pruning so the pruned model runs."""
    for m in model.modules():
        if hasattr(m, "qkv") and hasattr(m, "num_heads"):   # timm Attention reshapes by these
            m.num_heads = pruner.num_heads[m.qkv]
            m.head_dim = m.qkv.out_features // (3 * m.num_heads)
            if hasattr(m, "attn_dim"):
                m.attn_dim = m.num_heads * m.head_dim
    if isinstance(model, torchvision.models.VisionTransformer):
        model.hidden_dim = model.conv_proj.out_channels


def classifier(model):
    """The layer that outputs the classes, never pruned: the last Linear (SqueezeNet: its last conv)."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return linears[-1] if linears else [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]


def prune(model, importance, example, batches):
    if isinstance(importance, TaylorChannelImportance):
        importance.accumulate(model, batches, F.cross_entropy)
    else:   # Torch-Pruning's Taylor reads the parameter gradients summed over the same batches
        model.zero_grad(set_to_none=True)
        for x, y in batches:
            F.cross_entropy(model(x), y).backward()
    pruner = tp.pruner.MetaPruner(model, example, importance=importance, pruning_ratio=0.5,
                                  ignored_layers=[classifier(model)], num_heads=attention_heads(model),
                                  global_pruning=False)
    pruner.step()
    after_pruning(model, pruner)
    return model


def out_channels(model):
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


# Models whose pruned widths depend on WHICH channels go, not only on how many: GhostNet's ghost
# module concatenates two convs and slices the result to its output width, so the channels that
# survive the slice depend on the ones chosen (Torch-Pruning's own magnitude and Taylor end at
# 10.2 and 2.0 MMACs on it). Any two criteria prune them differently; for these the test checks
# that every group gets one score per root channel, as Torch-Pruning's Taylor sized to the root
# does, and that the pruned model runs.
CHOICE_DEPENDENT = {"timm/ghostnet_100"}


def setup(name):
    build, size, _ = MODELS[name]
    torch.manual_seed(0)
    model = build().eval()
    example = torch.randn(1, 3, size, size)
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(2, 3, size, size, generator=generator), torch.randint(0, 1000, (2,), generator=generator))
               for _ in range(2)]
    return model, example, batches


@pytest.mark.parametrize("name", [pytest.param(n, marks=list(m)) for n, (_, _, m) in MODELS.items()])
def test_ours_prunes_what_torch_prunings_taylor_prunes(name):
    model, example, batches = setup(name)
    ours = prune(copy.deepcopy(model), TaylorChannelImportance("fisher"), example, batches)
    if name in CHOICE_DEPENDENT:
        scored, reference = TaylorChannelImportance("fisher").accumulate(model, batches, F.cross_entropy), RootSizedTaylor()
        model.zero_grad(set_to_none=True)
        for x, y in batches:
            F.cross_entropy(model(x), y).backward()
        graph = tp.DependencyGraph().build_dependency(model, example)
        for group in graph.get_all_groups(ignored_layers=[classifier(model)]):
            assert scored(group).numel() == reference(group).numel() == len(group[0].idxs)
    else:
        theirs = prune(copy.deepcopy(model), RootSizedTaylor(), example, batches)
        assert out_channels(ours) == out_channels(theirs)
        assert tp.utils.count_ops_and_params(ours, example) == tp.utils.count_ops_and_params(theirs, example)
    before = tp.utils.count_ops_and_params(model, example)
    assert tp.utils.count_ops_and_params(ours, example)[0] < 0.6 * before[0]   # about half the channels: MACs fall
    with torch.no_grad():
        assert ours(example).shape == model(example).shape


def test_hugging_face_bert_from_its_config_heads_and_mlp():
    """A BERT built from its config alone (random weights, no download), its attention head
    dimensions and MLP pruned through Torch-Pruning as its transformers example does, with ours
    and with its own Taylor on the same batches."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.bert.modeling_bert import BertSelfAttention
    config = transformers.BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=256, vocab_size=500)
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    example = torch.randint(0, config.vocab_size, (1, 12))
    batches = [(torch.randint(0, config.vocab_size, (2, 12)), None) for _ in range(2)]

    def loss(out, _):   # every parameter, the pooler's too, gets a gradient (Torch-Pruning's Taylor needs it)
        return out.last_hidden_state.square().mean() + out.pooler_output.square().mean()

    def pruned(importance):
        m = copy.deepcopy(model)
        if isinstance(importance, TaylorChannelImportance):
            importance.accumulate(m, batches, loss)
        else:
            m.zero_grad(set_to_none=True)
            for x, _ in batches:
                loss(m(x), None).backward()
        heads = {}
        for a in m.modules():
            if isinstance(a, BertSelfAttention):
                heads.update({a.query: a.num_attention_heads, a.key: a.num_attention_heads, a.value: a.num_attention_heads})
        pruner = tp.pruner.MetaPruner(m, example, importance=importance, pruning_ratio=0.5, num_heads=heads,
                                      prune_head_dims=True, prune_num_heads=False, ignored_layers=[m.pooler],
                                      output_transform=lambda out: out.pooler_output.sum())
        pruner.step()
        for a in m.modules():
            if isinstance(a, BertSelfAttention):
                a.num_attention_heads = pruner.num_heads[a.query]
                a.attention_head_size = a.query.out_features // a.num_attention_heads
                a.all_head_size = a.query.out_features
        return m

    ours, theirs = pruned(TaylorChannelImportance("fisher")), pruned(RootSizedTaylor())
    assert out_channels(ours) == out_channels(theirs)
    layer = ours.encoder.layer[0]
    assert layer.attention.self.query.out_features == 64 and layer.intermediate.dense.out_features == 128
    with torch.no_grad():
        assert ours(example).last_hidden_state.shape[:2] == (1, 12)


def test_torch_prunings_own_taylor_missizes_ghost_groups():
    """Why the zoo compares with RootSizedTaylor: on GhostNet, Torch-Pruning's own Taylor returns
    scores longer than the group for the ghost groups, where ours (and RootSizedTaylor) return one
    score per root channel."""
    torch.manual_seed(0)
    model = timm.create_model("ghostnet_100").eval()
    example = torch.randn(1, 3, 64, 64)
    batches = [(torch.randn(2, 3, 64, 64), torch.randint(0, 1000, (2,)))]
    ours = TaylorChannelImportance("fisher").accumulate(model, batches, F.cross_entropy)
    for x, y in batches:
        F.cross_entropy(model(x), y).backward()
    graph = tp.DependencyGraph().build_dependency(model, example)
    theirs, missized = tp.importance.GroupTaylorImportance(), 0
    for group in graph.get_all_groups(ignored_layers=[classifier(model)]):
        root = len(group[0].idxs)
        assert ours(group).numel() == root
        missized += theirs(group).numel() != root
    assert missized > 0
