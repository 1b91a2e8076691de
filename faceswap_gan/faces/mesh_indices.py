"""Named index sets into MediaPipe's 478-point face mesh (468 mesh points + 10 iris points).

The contours follow the edge lists in ``mediapipe.python.solutions.face_mesh_connections``
(FACEMESH_FACE_OVAL, FACEMESH_LEFT_EYE, ...), written here as closed polygons in drawing
order so they can be filled directly (masks) or averaged (eye centres). tests/test_faces_*.py
checks every polygon against MediaPipe's own edge lists.

"Left" and "right" are the subject's: the LEFT_EYE appears on the image's right side in a
frontal, unmirrored picture.
"""

from __future__ import annotations

NUM_LANDMARKS = 478

# Closed polygon around the face, clockwise in the image from the top of the forehead.
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)

# Eye contours (closed), starting at the outer corner.
RIGHT_EYE: tuple[int, ...] = (
    33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7,
)
LEFT_EYE: tuple[int, ...] = (
    263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249,
)
RIGHT_EYE_CORNERS: tuple[int, int] = (33, 133)  # outer, inner
LEFT_EYE_CORNERS: tuple[int, int] = (263, 362)  # outer, inner

# Iris rings (the four points around each iris) and their centres (refine_landmarks only).
RIGHT_IRIS: tuple[int, ...] = (469, 470, 471, 472)
LEFT_IRIS: tuple[int, ...] = (474, 475, 476, 477)
RIGHT_IRIS_CENTER = 468
LEFT_IRIS_CENTER = 473
# Centre and ring together: the five iris points that move with the eyeball.
RIGHT_IRIS_AND_CENTER: tuple[int, ...] = (RIGHT_IRIS_CENTER, *RIGHT_IRIS)
LEFT_IRIS_AND_CENTER: tuple[int, ...] = (LEFT_IRIS_CENTER, *LEFT_IRIS)

# Open lid lines (corners excluded), from the outer to the inner corner: the two halves of
# each eye contour above.
RIGHT_UPPER_LID: tuple[int, ...] = RIGHT_EYE[1:8]
RIGHT_LOWER_LID: tuple[int, ...] = RIGHT_EYE[:8:-1]
LEFT_UPPER_LID: tuple[int, ...] = LEFT_EYE[1:8]
LEFT_LOWER_LID: tuple[int, ...] = LEFT_EYE[:8:-1]
# The skin fold just above each upper lid, point for point along it (outer to inner).
RIGHT_UPPER_CREASE: tuple[int, ...] = (247, 30, 29, 27, 28, 56, 190)
LEFT_UPPER_CREASE: tuple[int, ...] = (467, 260, 259, 257, 258, 286, 414)
# (upper, lower) lid points facing each other across the middle of each eye.
RIGHT_EYE_LIDS: tuple[tuple[int, int], ...] = tuple(zip(RIGHT_UPPER_LID[2:5], RIGHT_LOWER_LID[2:5]))
LEFT_EYE_LIDS: tuple[tuple[int, int], ...] = tuple(zip(LEFT_UPPER_LID[2:5], LEFT_LOWER_LID[2:5]))

# Lips: outer and inner closed contours, starting at the right mouth corner.
LIPS_OUTER: tuple[int, ...] = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
)
LIPS_INNER: tuple[int, ...] = (
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191,
)
MOUTH_CORNERS: tuple[int, int] = (61, 291)  # right, left
# Open lip lines from the right to the left mouth corner (corners included): the upper and
# lower halves of the two contours above.
LIPS_INNER_UPPER: tuple[int, ...] = LIPS_INNER[:1] + LIPS_INNER[:9:-1]
LIPS_INNER_LOWER: tuple[int, ...] = LIPS_INNER[:11]
LIPS_OUTER_UPPER: tuple[int, ...] = LIPS_OUTER[:1] + LIPS_OUTER[:9:-1]
LIPS_OUTER_LOWER: tuple[int, ...] = LIPS_OUTER[:11]
# (upper, lower) inner-lip points facing each other across the middle of the mouth.
INNER_LIP_PAIRS: tuple[tuple[int, int], ...] = tuple(zip(LIPS_INNER_UPPER[4:7], LIPS_INNER_LOWER[4:7]))
UPPER_LIP_INNER = 13
LOWER_LIP_INNER = 14

# Eyebrows: each is an upper and a lower run of five points (outer to inner).
RIGHT_EYEBROW: tuple[int, ...] = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
LEFT_EYEBROW: tuple[int, ...] = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)
EYEBROWS: tuple[int, ...] = RIGHT_EYEBROW + LEFT_EYEBROW

NOSE_BRIDGE = 168  # between the eyes: moves least with expression and pose
NOSE_TIP = 1
CHIN = 152
FOREHEAD = 10
RIGHT_CHEEK_EDGE = 234  # face-oval points at the widest part of the face (pose estimate)
LEFT_CHEEK_EDGE = 454

# Point pairs the head pose is measured on: symmetric (subject's right, subject's left) pairs
# give the face's left-right axis, midline (top, bottom) pairs its up-down axis.
SYMMETRIC_PAIRS: tuple[tuple[int, int], ...] = (
    (RIGHT_EYE_CORNERS[0], LEFT_EYE_CORNERS[0]),
    (RIGHT_EYE_CORNERS[1], LEFT_EYE_CORNERS[1]),
    MOUTH_CORNERS,
    (RIGHT_CHEEK_EDGE, LEFT_CHEEK_EDGE),
    (93, 323),
    (127, 356),
    (58, 288),
)
MIDLINE_PAIRS: tuple[tuple[int, int], ...] = ((FOREHEAD, CHIN), (NOSE_BRIDGE, 17), (151, 200), (6, 2))

# Points the alignment fits a similarity transform to: the four eye corners, the nose bridge
# and the mouth corners. All lie near one plane and move little with speech; the eye corners
# get a larger weight (ALIGN_WEIGHTS) so the eyes land where the template puts them.
ALIGN_POINTS: tuple[int, ...] = (33, 133, 362, 263, 168, 61, 291)
ALIGN_WEIGHTS: tuple[float, ...] = (3.0, 3.0, 3.0, 3.0, 1.0, 0.5, 0.5)
