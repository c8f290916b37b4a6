"""Frame sources: webcam, video file, RTSP/HTTP stream, images; read in a background thread."""
