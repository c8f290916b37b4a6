"""The page's own CSS and browser scripts: a compact header, the phone layout, status lines, the webcam's
"Stopped" state. Plain strings, no Gradio here; `launch` passes CSS to Gradio, `build_app` runs the script."""

from __future__ import annotations

from emomon.webapp.status import CSS as STATUS_CSS

# Columns a phone (under 700 px) keeps: #, top emotion(s) and V/A/D; 1-based positions per table.
PHONE_HIDDEN = {"image-persons": (6, 7), "video-tracks": (3, 7, 8), "cam-tracks": (4,)}

_PHONE_TABLES = "\n".join(
    f"  #{table} table th:nth-child({n}), #{table} table td:nth-child({n}) {{ display: none !important; }}"
    for table, cols in PHONE_HIDDEN.items() for n in cols)

CSS = STATUS_CSS + """
#banner, #intro { margin: 0 !important; }
#intro-box { flex: 0 0 auto !important; width: auto !important; min-width: 0 !important; }
#banner { flex: 1 1 0 !important; }
#person-detail-box:not(:has(.person-detail)) { display: none; }
.person-detail table { font-size: 14px; margin: 4px 0; }
.person-detail td { padding: 1px 8px 1px 0; }
#header-row { gap: 6px !important; align-items: center; }
#model-status:not(:has(.emomon-status)) { display: none; }
@media (max-width: 700px) {
  #main-row { flex-direction: column !important; }
  #tabs-col { order: 1; }
  #settings-col { order: 2; }
  #header-row { flex-direction: column !important; align-items: stretch !important; }
  #banner { flex: none !important; }
""" + _PHONE_TABLES + """
}
"""

# Run once on page load. Gradio has no "recording stopped" event: when the camera stops, the live status
# line would keep saying "Streaming"; this rewrites it to "Stopped" (and keeps the measured figures).
WEBCAM_STOPPED_JS = r"""
() => {
  const fix = () => {
    const st = document.querySelector('#cam-status');
    if (!st) return;
    const recording = !!document.querySelector('#cam [title="stop recording"]');
    const walker = document.createTreeWalker(st, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      if (!recording && node.nodeValue.startsWith('Streaming')) {
        node.nodeValue = node.nodeValue.replace(/^Streaming/, 'Stopped');
      }
    }
  };
  new MutationObserver(fix).observe(document.body, {subtree: true, childList: true, characterData: true,
                                                    attributes: true, attributeFilter: ['title']});
}
"""

# Outlines the selected track over the playing annotated video: a canvas laid over the <video> (object-fit:
# contain) shows the box of the track's person-frame nearest to the playback time, within half a second.
HIGHLIGHT_TRACK_JS = r"""
(data) => {
  window.__emomonBoxes = data ? JSON.parse(data) : [];
  if (window.__emomonHighlight) return;
  window.__emomonHighlight = true;
  const draw = () => {
    const v = document.querySelector('#video-output video');
    if (v && v.videoWidth) {
      let c = v.parentElement.querySelector('#track-highlight');
      if (!c) {
        c = document.createElement('canvas');
        c.id = 'track-highlight';
        c.style.cssText = 'position:absolute;pointer-events:none;z-index:5;left:0;top:0';
        if (getComputedStyle(v.parentElement).position === 'static') v.parentElement.style.position = 'relative';
        v.parentElement.appendChild(c);
      }
      const r = v.getBoundingClientRect(), pr = v.parentElement.getBoundingClientRect();
      const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
      const w = Math.round(v.videoWidth * s), h = Math.round(v.videoHeight * s);
      if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
      c.style.left = (r.left - pr.left + (r.width - w) / 2) + 'px';
      c.style.top = (r.top - pr.top + (r.height - h) / 2) + 'px';
      const g = c.getContext('2d');
      g.clearRect(0, 0, w, h);
      let best = null, gap = 0.5;
      for (const b of window.__emomonBoxes) {
        const d = Math.abs(b[0] - v.currentTime);
        if (d < gap) { gap = d; best = b; }
      }
      if (best) {
        g.strokeStyle = '#facc15'; g.lineWidth = 3; g.setLineDash([8, 5]);
        g.strokeRect(best[1] * s, best[2] * s, (best[3] - best[1]) * s, (best[4] - best[2]) * s);
      }
    }
    requestAnimationFrame(draw);
  };
  requestAnimationFrame(draw);
}
"""

# Gradio's video player raises its own "Video not playable" toast for an upload it cannot play; the status
# line by the button already says so in words, once, so that toast is removed as it appears.
QUIET_PLAYER_TOASTS_JS = r"""
() => {
  new MutationObserver(() => {
    document.querySelectorAll('.toast-body').forEach((t) => {
      if (/Video not playable/.test(t.innerText)) (t.closest('.toast-item') || t).remove();
    });
  }).observe(document.body, {subtree: true, childList: true});
}
"""
