"""The EMOTIC label space: 26 categories in the official order, VAD names, and zero-shot prompt text."""

from __future__ import annotations

# Official order (alphabetical), as in rkosti/emotic and every PyTorch reproduction.
EMOTIC_CATEGORIES: tuple[str, ...] = (
    "Affection", "Anger", "Annoyance", "Anticipation", "Aversion", "Confidence", "Disapproval",
    "Disconnection", "Disquietment", "Doubt/Confusion", "Embarrassment", "Engagement", "Esteem",
    "Excitement", "Fatigue", "Fear", "Happiness", "Pain", "Peace", "Pleasure", "Sadness", "Sensitivity",
    "Suffering", "Surprise", "Sympathy", "Yearning",
)
NUM_CATEGORIES = len(EMOTIC_CATEGORIES)
VAD_NAMES: tuple[str, ...] = ("valence", "arousal", "dominance")
VAD_MIN, VAD_MAX = 1.0, 10.0  # EMOTIC's continuous scale

# Short written descriptions per category (after the EMOTIC paper's definitions). Zero-shot scoring
# compares images with these rather than bare names: EmoCLIP showed descriptions beat class names.
CATEGORY_DESCRIPTIONS: dict[str, str] = {
    "Affection": "fond feelings, love and tenderness",
    "Anger": "intense displeasure or rage, furious and resentful",
    "Annoyance": "bothered by something or someone, irritated, impatient and frustrated",
    "Anticipation": "looking forward to something, hoping for or getting ready for what comes next",
    "Aversion": "disgust, dislike and repulsion",
    "Confidence": "feeling certain and proud, sure that things will turn out well",
    "Disapproval": "feeling that something is wrong, contempt and hostility",
    "Disconnection": "not interested in what is happening around them, indifferent, bored and distracted",
    "Disquietment": "nervous, worried, anxious, tense and upset",
    "Doubt/Confusion": "finding it hard to understand or decide, thinking over different options",
    "Embarrassment": "feeling ashamed or guilty",
    "Engagement": "paying attention, absorbed in something, curious and interested",
    "Esteem": "respect and admiration for someone, grateful",
    "Excitement": "enthusiastic, stimulated and energetic",
    "Fatigue": "weary, tired and sleepy",
    "Fear": "afraid of danger, threat or pain, horrified",
    "Happiness": "delighted, enjoying themselves and amused",
    "Pain": "physical suffering",
    "Peace": "relaxed and at ease, without worries, satisfied",
    "Pleasure": "delight in the senses",
    "Sadness": "unhappy, sorrowful, disappointed or discouraged",
    "Sensitivity": "feeling delicate or vulnerable, emotionally hurt",
    "Suffering": "psychological or emotional pain, distressed and anguished",
    "Surprise": "suddenly discovering something unexpected",
    "Sympathy": "sharing the feelings or troubles of others, supportive and compassionate",
    "Yearning": "a strong desire to have something, longing, jealous or envious",
}

# Prompt templates averaged per category (a prompt ensemble, as in CLIP's zero-shot evaluation).
CATEGORY_TEMPLATES: tuple[str, ...] = (
    "a photo of a person feeling {name}: {desc}.",
    "a photo of a person who is {desc}.",
    "a person showing {name}.",
    "a picture of someone whose body language shows {desc}.",
)

# VAD from prompt pairs: the high end of each dimension against its low end, mapped to 1..10.
VAD_PROMPTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "valence": (
        ("a photo of a person feeling pleasant and happy.", "a photo of a person in a good mood."),
        ("a photo of a person feeling unpleasant and unhappy.", "a photo of a person in a bad mood."),
    ),
    "arousal": (
        ("a photo of an excited, energetic and agitated person.", "a photo of a very active, alert person."),
        ("a photo of a calm, relaxed and sleepy person.", "a photo of a passive, quiet person."),
    ),
    "dominance": (
        ("a photo of a dominant person who is in control.", "a photo of a powerful, confident person."),
        ("a photo of a submissive person who feels controlled.", "a photo of a powerless, weak person."),
    ),
}
