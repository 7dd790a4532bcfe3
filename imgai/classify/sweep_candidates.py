"""What the support sweep tries (imgai/classify/sweep.py): every transformers model type with an
image-classification head, and timm's popular architecture families.

This list says what to *try*, not what is supported: a candidate is offered only when the sweep
built it, exported it and validated it (support_table.json). Where a real-size model would take
minutes to export on two cores, a candidate is shrunk (fewer layers, narrower) with the same ops;
`shrink` records exactly what was changed and the table shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    library: str                                   # transformers | timm
    name: str                                      # transformers model_type, or the timm model built
    family: str                                    # shown to users (ViT, ConvNeXt, ResNet, …)
    patterns: tuple[str, ...] = ()                 # timm: the architectures this candidate stands for
    shrink: dict = field(default_factory=dict, hash=False, compare=False)   # config overrides

    @property
    def key(self) -> str:
        return f"{self.library}:{self.name}"


# transformers model_type → family shown to users, where the class name's prefix is not the name
# people use (the rest show the class name without "ForImageClassification").
TRANSFORMERS_FAMILY_NAMES = {
    "resnet": "ResNet", "efficientnet": "EfficientNet", "mobilenet_v1": "MobileNet", "mobilenet_v2": "MobileNet",
    "convnext": "ConvNeXt", "convnextv2": "ConvNeXt-V2", "vit": "ViT", "deit": "DeiT", "beit": "BEiT",
    "swin": "Swin", "swinv2": "Swin-V2", "dinov2": "DINOv2", "dinov2_with_registers": "DINOv2",
    "regnet": "RegNet", "mobilevit": "MobileViT", "mobilevitv2": "MobileViT-V2", "levit": "LeViT",
    "efficientformer": "EfficientFormer", "poolformer": "PoolFormer", "hiera": "Hiera", "focalnet": "FocalNet",
    "pvt_v2": "PVT-V2", "pvt": "PVT", "data2vec-vision": "Data2Vec-Vision", "vit_msn": "ViT-MSN",
    "vit_hybrid": "ViT-Hybrid", "ijepa": "I-JEPA", "bit": "BiT", "cvt": "CvT", "clip": "CLIP", "siglip": "SigLIP",
    "siglip2": "SigLIP2", "segformer": "SegFormer", "swiftformer": "SwiftFormer", "hgnet_v2": "HGNet-V2",
}

_TRANSFORMER_SHRINK = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2}
_CLIP_SHRINK = {"vision_config": {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128,
                                  "num_attention_heads": 2, "image_size": 224, "patch_size": 32},
                "text_config": {"num_hidden_layers": 1, "hidden_size": 32, "intermediate_size": 64,
                                "num_attention_heads": 2}}
# Per model type: how it is shrunk (fewer layers/blocks, narrower; the same ops). Types not listed
# are built at their default configuration.
TRANSFORMERS_SHRINK: dict[str, dict] = {
    "vit": _TRANSFORMER_SHRINK, "deit": _TRANSFORMER_SHRINK, "beit": _TRANSFORMER_SHRINK,
    "data2vec-vision": _TRANSFORMER_SHRINK, "dinov2": _TRANSFORMER_SHRINK, "dinov2_with_registers": _TRANSFORMER_SHRINK,
    "ijepa": _TRANSFORMER_SHRINK, "vit_msn": _TRANSFORMER_SHRINK, "vit_hybrid": _TRANSFORMER_SHRINK,
    "imagegpt": {"n_layer": 2, "n_embd": 64, "n_head": 2},
    "clip": _CLIP_SHRINK, "siglip": _CLIP_SHRINK, "siglip2": _CLIP_SHRINK, "metaclip_2": _CLIP_SHRINK,
    "swin": {"depths": [1, 1, 1, 1], "embed_dim": 32, "num_heads": [1, 2, 4, 8]},
    "swinv2": {"depths": [1, 1, 1, 1], "embed_dim": 32, "num_heads": [1, 2, 4, 8]},
    "donut-swin": {"depths": [1, 1, 1, 1], "embed_dim": 32, "num_heads": [1, 2, 4, 8]},
    "focalnet": {"depths": [1, 1, 1, 1], "embed_dim": 32},
    "convnext": {"depths": [1, 1, 1, 1], "hidden_sizes": [16, 32, 64, 128]},
    "convnextv2": {"depths": [1, 1, 1, 1], "hidden_sizes": [16, 32, 64, 128]},
    "regnet": {"depths": [1, 1, 1, 1]},
    "resnet": {"depths": [1, 1, 1, 1]},
    "bit": {"depths": [1, 1, 1, 1]},
    "hiera": {"depths": [1, 1, 1, 1], "embed_dim": 32, "num_heads": [1, 2, 4, 8]},
    "pvt": {"depths": [1, 1, 1, 1]},
    "pvt_v2": {"depths": [1, 1, 1, 1]},
    "poolformer": {"depths": [1, 1, 1, 1]},
    "segformer": {"depths": [1, 1, 1, 1]},
    "van": {"depths": [1, 1, 1, 1]},
    "swiftformer": {"depths": [1, 1, 1, 1]},
    "efficientformer": {"depths": [1, 1, 1, 1], "num_meta3d_blocks": 1},
    "perceiver": {"num_latents": 32, "d_latents": 64, "num_blocks": 1, "num_self_attends_per_block": 1,
                  "num_self_attention_heads": 2, "num_cross_attention_heads": 1},
    "levit": {"depth": [1, 1, 1]},
    "dinat": {"depths": [1, 1, 1, 1]}, "nat": {"depths": [1, 1, 1, 1]},
    # a 4-billion-parameter Gemma-3 safety classifier by default: one narrow layer of each tower
    "shieldgemma2": {"text_config": {"num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 128,
                                     "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
                                     "vocab_size": 262208},
                     "vision_config": {"num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 128,
                                       "num_attention_heads": 2}},
    # the default configuration is EfficientNet-B7 at 600 px; B0's coefficients are a real model too
    "efficientnet": {"width_coefficient": 1.0, "depth_coefficient": 1.0, "image_size": 224, "hidden_dim": 1280},
}

# timm: (family, the model built, the architectures it stands for). The model built is each
# family's smallest member; `shrink` passes create_model keyword arguments (depth/width).
_T = [
    ("ResNet", "resnet18", ("resnet[0-9]*", "resnet[0-9]*.*", "resnetv2_*", "resnet[0-9]*d", "seresnet*",
                            "resnext*", "ecaresnet*", "wide_resnet*", "resnetrs*", "resnetaa*", "seresnext*")),
    ("EfficientNet", "efficientnet_b0", ("efficientnet_*", "tf_efficientnet_*", "efficientnetv2_*",
                                         "tf_efficientnetv2_*")),
    ("MobileNet", "mobilenetv3_small_050", ("mobilenetv2_*", "mobilenetv3_*", "tf_mobilenetv3_*")),
    ("MobileNet-V4", "mobilenetv4_conv_small", ("mobilenetv4_*",)),
    ("ConvNeXt", "convnext_atto", ("convnext_*",)),
    ("ConvNeXt-V2", "convnextv2_atto", ("convnextv2_*",)),
    ("ViT", "vit_tiny_patch16_224", ("vit_*",)),
    ("DeiT", "deit_tiny_patch16_224", ("deit_*", "deit3_*")),
    ("BEiT", "beit_base_patch16_224", ("beit_*", "beitv2_*"), {"depth": 2}),
    ("EVA", "eva02_tiny_patch14_224", ("eva02_*", "eva_*")),
    ("Swin", "swin_tiny_patch4_window7_224", ("swin_*",), {"depths": (1, 1, 1, 1)}),
    ("Swin-V2", "swinv2_tiny_window8_256", ("swinv2_*",), {"depths": (1, 1, 1, 1)}),
    ("EfficientFormer", "efficientformer_l1", ("efficientformer_l*",)),
    ("EfficientFormer-V2", "efficientformerv2_s0", ("efficientformerv2_*",)),
    ("EfficientViT", "efficientvit_b0", ("efficientvit_b*", "efficientvit_l*")),
    ("EfficientViT-MSRA", "efficientvit_m0", ("efficientvit_m*",)),
    ("RegNet", "regnetx_002", ("regnetx_*", "regnety_*", "regnetv_*")),
    ("RegNetZ", "regnetz_005", ("regnetz_*",)),
    ("MobileViT", "mobilevit_xxs", ("mobilevit_*",)),
    ("MobileViT-V2", "mobilevitv2_050", ("mobilevitv2_*",)),
    ("MobileOne", "mobileone_s0", ("mobileone_*",)),
    ("FastViT", "fastvit_t8", ("fastvit_*",)),
    ("LeViT", "levit_128s", ("levit_*",)),
    ("EdgeNeXt", "edgenext_xx_small", ("edgenext_*",)),
    ("GhostNet", "ghostnet_050", ("ghostnet_*",)),
    ("GhostNet-V2", "ghostnetv2_100", ("ghostnetv2_*",)),
    ("RexNet", "rexnet_100", ("rexnet_*", "rexnetr_*")),
    ("HRNet", "hrnet_w18_small", ("hrnet_*",)),
    ("DenseNet", "densenet121", ("densenet*",)),
    ("Inception-V3", "inception_v3", ("inception_v3*", "tf_inception_v3*", "adv_inception_v3*")),
    ("Inception-V4", "inception_v4", ("inception_v4*",)),
    ("Inception-ResNet-V2", "inception_resnet_v2", ("inception_resnet_v2*", "ens_adv_inception_resnet_v2*")),
    ("Xception", "xception41", ("xception*", "legacy_xception*")),
    ("DLA", "dla34", ("dla*",)),
    ("DPN", "dpn68", ("dpn*",)),
    ("NFNet", "nf_resnet26", ("nfnet_*", "dm_nfnet_*", "eca_nfnet_*", "nf_*")),
    ("ResNeSt", "resnest14d", ("resnest*",)),
    ("TinyViT", "tiny_vit_5m_224", ("tiny_vit_*",)),
    ("MaxViT", "maxvit_nano_rw_256", ("maxvit_*", "maxxvit*")),
    ("CoAtNet", "coatnet_nano_rw_224", ("coatnet_*", "coatnext_*")),
    ("CAFormer", "caformer_s18", ("caformer_*",)),
    ("ConvFormer", "convformer_s18", ("convformer_*",)),
    ("PoolFormer", "poolformer_s12", ("poolformer_*", "poolformerv2_*")),
    ("Hiera", "hiera_tiny_224", ("hiera_*",)),
    ("CSPNet", "cspresnet50", ("cspresnet*", "cspresnext*", "cspdarknet*", "darknet*")),
    ("VGG", "vgg11", ("vgg*",)),
    ("RepVGG", "repvgg_a0", ("repvgg_*",)),
    ("LCNet", "lcnet_050", ("lcnet_*",)),
    ("MixNet", "mixnet_s", ("mixnet_*", "tf_mixnet_*")),
    ("MnasNet", "mnasnet_050", ("mnasnet_*", "semnasnet_*")),
    ("TinyNet", "tinynet_e", ("tinynet_*",)),
    ("FBNet", "fbnetc_100", ("fbnet*",)),
    ("CrossViT", "crossvit_tiny_240", ("crossvit_*",)),
    ("CaiT", "cait_xxs24_224", ("cait_*",), {"depth": 2}),
    ("XCiT", "xcit_nano_12_p16_224", ("xcit_*",)),
    ("PiT", "pit_ti_224", ("pit_*",)),
    ("Twins", "twins_pcpvt_small", ("twins_*",), {"depths": (1, 1, 1, 1)}),
    ("PVT-V2", "pvt_v2_b0", ("pvt_v2_*",)),
    ("CoaT", "coat_lite_tiny", ("coat_*",)),
    ("ConViT", "convit_tiny", ("convit_*",)),
    ("MLP-Mixer", "mixer_s16_224", ("mixer_*",)),
    ("ResMLP", "resmlp_12_224", ("resmlp_*",)),
    ("gMLP", "gmlp_ti16_224", ("gmlp_*",)),
    ("FocalNet", "focalnet_tiny_srf", ("focalnet_*",)),
    ("DaViT", "davit_tiny", ("davit_*",), {"depths": (1, 1, 1, 1)}),
    ("GCViT", "gcvit_xxtiny", ("gcvit_*",)),
    ("NesT", "nest_tiny", ("nest_*", "jx_nest_*")),
    ("Sequencer", "sequencer2d_s", ("sequencer2d_*",), {"layers": (1, 1, 1, 1)}),
    ("VOLO", "volo_d1_224", ("volo_*",), {"layers": (1, 1, 1, 1)}),
    ("TResNet", "tresnet_m", ("tresnet_*",)),
    ("VoVNet", "ese_vovnet19b_dw", ("ese_vovnet*", "vovnet*")),
    ("SelecSLS", "selecsls42b", ("selecsls*",)),
    ("Res2Net", "res2net50_26w_4s", ("res2net*", "res2next*")),
    ("SKNet", "skresnet18", ("skresnet*", "skresnext*")),
    ("RepGhostNet", "repghostnet_050", ("repghostnet_*",)),
    ("InceptionNeXt", "inception_next_tiny", ("inception_next_*",)),
    ("RDNet", "rdnet_tiny", ("rdnet_*",)),
    ("MambaOut", "mambaout_femto", ("mambaout_*",)),
    ("StarNet", "starnet_s1", ("starnet_*",)),
    ("HGNet", "hgnetv2_b0", ("hgnetv2_*", "hgnet_*")),
    ("RepViT", "repvit_m0_9", ("repvit_*",)),
    ("NextViT", "nextvit_small", ("nextvit_*",)),
    ("GENet", "gernet_s", ("gernet_*",)),
    ("HardCoReNAS", "hardcorenas_a", ("hardcorenas_*",)),
]

TIMM_CANDIDATES = tuple(Candidate("timm", model, family, patterns, dict(rest[0]) if rest else {})
                        for family, model, patterns, *rest in _T)


def transformers_candidates() -> tuple[Candidate, ...]:
    """Every model_type transformers maps to an image-classification head (imports transformers)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    out = []
    for model_type, classes in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES.items():
        cls = classes[0] if isinstance(classes, (tuple, list)) else classes
        family = TRANSFORMERS_FAMILY_NAMES.get(model_type) or cls.replace("ForImageClassification", "")
        out.append(Candidate("transformers", model_type, family, (), dict(TRANSFORMERS_SHRINK.get(model_type, {}))))
    return tuple(out)


def all_candidates() -> tuple[Candidate, ...]:
    return transformers_candidates() + TIMM_CANDIDATES
