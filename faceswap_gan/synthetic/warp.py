"""Dense piecewise-affine warp: draw a triangulated image at moved vertices with one remap.

Each output pixel is assigned the triangle that covers it (triangles drawn far to near
into an index buffer, so a nose turned over a cheek hides the cheek), then the pixel's
source position is that triangle's affine map applied to the pixel. One ``cv2.remap``
samples the source. Triangles whose orientation flipped (folded over) are dropped; the
pixels they leave fall back to ``fallback`` (the background's own affine map).
"""

from __future__ import annotations

import cv2
import numpy as np

_SUBPIXEL_BITS = 4  # fillConvexPoly's fixed-point shift: 1/16 pixel vertex precision


def triangle_affines(src: np.ndarray, dst: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(T, 2, 3) affine maps taking each destination triangle onto its source triangle.

    Closed form (barycentric basis), much faster than a batched solve for ~1000
    triangles; degenerate triangles get a zero map (they are never drawn).
    """
    d0, d1, d2 = (dst[triangles[:, i]] for i in range(3))
    s0, s1, s2 = (src[triangles[:, i]] for i in range(3))
    e1, e2 = d1 - d0, d2 - d0
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-9
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # Inverse of [e1 e2] (columns): maps a destination offset to barycentric (b1, b2).
    i00, i01 = e2[:, 1] * inv_det, -e2[:, 0] * inv_det
    i10, i11 = -e1[:, 1] * inv_det, e1[:, 0] * inv_det
    f1, f2 = s1 - s0, s2 - s0  # source edges
    a = f1[:, :, None] * np.stack([i00, i01], 1)[:, None, :] + f2[:, :, None] * np.stack([i10, i11], 1)[:, None, :]
    offset = s0 - np.einsum("tij,tj->ti", a, d0)
    out = np.concatenate([a, offset[:, :, None]], axis=2)
    out[~ok] = 0.0
    return out


def warp_image(
    source: np.ndarray,
    src_points: np.ndarray,
    dst_points: np.ndarray,
    triangles: np.ndarray,
    depth: np.ndarray,
    rest_sign: np.ndarray,
    out_size: tuple[int, int],
    fallback: np.ndarray,
) -> np.ndarray:
    """Warp ``source`` so that ``src_points`` land on ``dst_points``.

    ``depth`` (per point, larger = farther) orders the triangles; ``rest_sign`` is each
    triangle's orientation at rest (a triangle whose sign flips has folded and is
    dropped); ``fallback`` is a (2, 3) affine from output to source pixels for pixels no
    triangle covers. Returns the warped RGB image of ``out_size`` (width, height).
    """
    width, height = out_size
    area = 0.5 * np.cross(dst_points[triangles[:, 1]] - dst_points[triangles[:, 0]],
                          dst_points[triangles[:, 2]] - dst_points[triangles[:, 0]])
    keep = (np.sign(area) == rest_sign) & (np.abs(area) > 1e-3)
    tri_ids = np.nonzero(keep)[0]
    order = tri_ids[np.argsort(-depth[triangles[tri_ids]].max(axis=1), kind="stable")]

    affines = np.concatenate([triangle_affines(src_points, dst_points, triangles),
                              np.asarray(fallback, dtype=np.float64)[None]], axis=0)
    fallback_id = len(triangles)
    index = np.full((height, width), fallback_id, dtype=np.int32)
    scale = 1 << _SUBPIXEL_BITS
    corners = np.round(dst_points[triangles] * scale).astype(np.int32)  # (T, 3, 2)
    # Only triangles that touch the frame are drawn.
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    visible = (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < width * scale) & (lo[:, 1] < height * scale)
    for t in order:
        if visible[t]:
            cv2.fillConvexPoly(index, corners[t], int(t), lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)

    coeffs = affines.reshape(-1, 6).astype(np.float32).T  # 6 x (T + 1)
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    flat = index.ravel()
    a, b, c, d, e, f = (np.take(row, flat).reshape(height, width) for row in coeffs)
    map_x = a * xs
    map_x += b * ys
    map_x += c
    map_y = d * xs
    map_y += e * ys
    map_y += f
    return cv2.remap(source, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT_101)
