"""Tiny random AudioLDM and AudioLDM2 pipelines, built offline (no hub, no tokenizer files).

Component sizes follow diffusers' own fast tests; tokenizers are built from in-memory
vocabularies. The vocoder's hop is 16 samples at 16 kHz and the UNet's window is 64
latent rows (2048 samples, 0.128 s), so short test clips already span several chunks.
"""

from __future__ import annotations

import torch

VOCODER = dict(model_in_dim=16, sampling_rate=16000, upsample_initial_channel=16, upsample_rates=[4, 4],
               upsample_kernel_sizes=[8, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
               normalize_before=False)
UNET_SIZE = dict(block_out_channels=(32, 64), layers_per_block=1, sample_size=64, in_channels=4, out_channels=4,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
VAE_SIZE = dict(block_out_channels=[32, 64], in_channels=1, out_channels=1, latent_channels=4,
                down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"])


def _byte_level_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    return [chr(c) for c in printable] + [chr(256 + n) for n in range(len(extra))]


def roberta_tokenizer(max_length: int = 16):
    from transformers import RobertaTokenizer

    vocab = {tok: i for i, tok in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", *_byte_level_symbols()])}
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def t5_tokenizer(max_length: int = 16):
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    pieces += [(chr(c), -2.0) for c in range(33, 127)]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)


def _clap_text_config(hidden: int, projection: int):
    from transformers import ClapTextConfig

    return ClapTextConfig(bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=hidden, intermediate_size=37,
                          num_attention_heads=2, num_hidden_layers=2, vocab_size=300, projection_dim=projection,
                          max_position_embeddings=40)


def _vae_and_vocoder():
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(0)
    vae = AutoencoderKL(**VAE_SIZE)
    torch.manual_seed(0)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(**VOCODER))
    return vae, vocoder


def _scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False)


def tiny_audioldm():
    """An ``AudioLDMPipeline`` with random weights."""
    from diffusers import UNet2DConditionModel
    from diffusers.pipelines.deprecated.audioldm import AudioLDMPipeline
    from transformers import ClapTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**UNET_SIZE, cross_attention_dim=(32, 64), class_embed_type="simple_projection",
                                projection_class_embeddings_input_dim=32, class_embeddings_concat=True)
    vae, vocoder = _vae_and_vocoder()
    torch.manual_seed(0)
    text_encoder = ClapTextModelWithProjection(_clap_text_config(32, 32))
    pipeline = AudioLDMPipeline(vae=vae, text_encoder=text_encoder, tokenizer=roberta_tokenizer(), unet=unet,
                                scheduler=_scheduler(), vocoder=vocoder)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def tiny_audioldm2():
    """An ``AudioLDM2Pipeline`` with random weights (GPT-2 as its language model)."""
    from diffusers import AudioLDM2Pipeline, AudioLDM2ProjectionModel, AudioLDM2UNet2DConditionModel
    from transformers import (ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, GPT2Config,
                              GPT2LMHeadModel, T5Config, T5EncoderModel)

    torch.manual_seed(0)
    unet = AudioLDM2UNet2DConditionModel(**UNET_SIZE, cross_attention_dim=([None, 16, 32], [None, 16, 32]))
    vae, vocoder = _vae_and_vocoder()
    torch.manual_seed(0)
    audio_config = ClapAudioConfig(spec_size=64, window_size=4, num_mel_bins=64, intermediate_size=37,
                                   depths=[2, 2], num_attention_heads=[2, 2], num_hidden_layers=2, hidden_size=192,
                                   projection_dim=16, patch_size=2, patch_stride=2, patch_embed_input_channels=4)
    text_encoder = ClapModel(ClapConfig(text_config=_clap_text_config(16, 16).to_dict(),
                                        audio_config=audio_config.to_dict(), projection_dim=16))
    torch.manual_seed(0)
    text_encoder_2 = T5EncoderModel(T5Config(vocab_size=100, d_model=32, d_ff=37, d_kv=8, num_heads=2, num_layers=2))
    torch.manual_seed(0)
    language_model = GPT2LMHeadModel(GPT2Config(n_embd=16, n_head=2, n_layer=2, vocab_size=300, n_ctx=99,
                                                n_positions=99, bos_token_id=0, eos_token_id=2))
    language_model.config.max_new_tokens = 4
    torch.manual_seed(0)
    projection_model = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=16)
    feature_extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=48000, hop_length=480, max_length_s=1,
                                             fft_window_size=1024)
    pipeline = AudioLDM2Pipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                 projection_model=projection_model, language_model=language_model,
                                 tokenizer=roberta_tokenizer(), tokenizer_2=t5_tokenizer(),
                                 feature_extractor=feature_extractor, unet=unet, scheduler=_scheduler(),
                                 vocoder=vocoder)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def clap_scorer_folder(folder):
    """A tiny random CLAP model and processor saved to ``folder`` (16 kHz, 1 s windows)."""
    from transformers import (ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor)

    torch.manual_seed(0)
    audio_config = ClapAudioConfig(spec_size=64, window_size=4, num_mel_bins=64, intermediate_size=37, depths=[2, 2],
                                   num_attention_heads=[2, 2], num_hidden_layers=2, hidden_size=32,
                                   patch_embeds_hidden_size=16, projection_dim=16, patch_size=2, patch_stride=2,
                                   patch_embed_input_channels=1, enable_fusion=False)
    model = ClapModel(ClapConfig(text_config=_clap_text_config(16, 16).to_dict(), audio_config=audio_config.to_dict(),
                                 projection_dim=16))
    extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=16000, hop_length=320, max_length_s=1,
                                     fft_window_size=1024)
    ClapProcessor(feature_extractor=extractor, tokenizer=roberta_tokenizer()).save_pretrained(folder)
    model.save_pretrained(folder)
    return folder
