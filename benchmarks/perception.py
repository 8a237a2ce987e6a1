"""Find and track the world's objects in any RGB clip (world footage, generator output, H.264 copies).

Pipeline, all vectorised over the whole clip [T, H, W, 3]:
1. background: the temporal median, checked against a smooth per-region model (sky + floor band in the
   side view, table + dark rim seen from above) so that static objects (walls, candles, lamps) are not
   mistaken for background;
2. segmentation: colour distance from the background; every foreground pixel gets the name of the nearest
   reference colour, taken from "strong" pixels only (anti-aliased edges are blends with the background
   and would look like other colours) and spread to the edges by a distance transform; connected
   components per colour name (the world never shows two movable objects of the same colour);
3. description: soft coverage (unmixing each pixel between background and object colour) gives sub-pixel
   centroids and areas; fill ratio and vertical asymmetry tell ball / square / triangle; colour and
   context tell the props (wall, block, candle + flame, smoke, puff, cookie + notch, mouth, lamp, switch);
4. tracking: Hungarian assignment (scipy linear_sum_assignment) on predicted position, colour and class;
   tracks survive any gap, so an object that passes behind a wall keeps its identity when it re-emerges.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

PALETTE_NAMES = ("red", "green", "blue", "yellow", "purple", "orange")
SHAPE_CLASSES = ("ball", "square", "triangle")
# classes that are states or passing effects of other objects, not objects that must persist
EPHEMERAL = ("flame", "smoke", "puff", "detail")

F32 = np.float32


def _refs() -> tuple[list[str], np.ndarray]:
    """Reference colours (name, RGB): palette colours with ball shading, props and their details."""
    from world.scenes import PALETTE

    refs: list[tuple[str, tuple]] = []
    for name, rgb in PALETTE.items():
        for k in (0.8, 1.0, 1.15):
            refs.append((name, tuple(min(255.0, k * c) for c in rgb)))
    refs += [
        ("gray", (110, 110, 118)), ("gray", (85, 85, 90)), ("gray", (120, 120, 125)),  # wall, lamp off, smoke
        ("gray", (150, 148, 146)), ("gray", (172, 170, 167)),  # thin smoke over the background
        ("white", (240, 236, 222)), ("white", (250, 252, 255)),  # candle, puff
        ("brown", (176, 120, 62)), ("brown", (80, 45, 25)),  # cookie and its chips
        ("pink", (236, 120, 160)), ("black", (40, 40, 44)),
        ("flame", (255, 170, 40)), ("flame", (255, 240, 170)),
        ("lit", (255, 228, 80)), ("red", (200, 50, 45)), ("green", (60, 190, 80)),  # lamp on, switch off / on
    ]
    return [n for n, _ in refs], np.asarray([c for _, c in refs], F32)


REF_NAMES, REF_RGB = _refs()
NAMES = sorted(set(REF_NAMES) | {"puff"})
_NAME_IDX = np.asarray([NAMES.index(n) + 1 for n in REF_NAMES])  # ref -> name label (0 = background)


def nearest_name(rgb: np.ndarray) -> np.ndarray:
    """Name label (1..) of the nearest reference colour for each row of rgb [N, 3]."""
    d2 = (rgb * rgb).sum(1, keepdims=True) - 2 * rgb @ REF_RGB.T + (REF_RGB * REF_RGB).sum(1)
    return _NAME_IDX[np.argmin(d2, 1)]


# ----------------------------------------------------------------------------------------------
# background


@dataclass
class Background:
    image: np.ndarray  # [H, W, 3] float32
    view: str  # "side", "top" or "plain"
    floor_y: float | None  # first floor row (side view)
    rim: int  # width of the dark table rim in px (top view)


def _poly_fit(img: np.ndarray, mask: np.ndarray, iters: int = 4) -> np.ndarray:
    """Robust quadratic surface per channel over `mask` (static objects are rejected as outliers)."""
    H, W = mask.shape
    yy, xx = np.mgrid[0:H, 0:W].astype(F32)
    xx, yy = xx / W - 0.5, yy / H - 0.5
    A = np.stack([np.ones_like(xx), xx, yy, xx * xx, xx * yy, yy * yy], -1).reshape(-1, 6)
    vals = img.reshape(-1, 3)
    # start from pixels near the region's median colour: static objects (a wall, a cookie) can cover a
    # large share of the frame and would bend a plain least-squares surface towards them
    med = np.median(vals[mask.reshape(-1)], 0) if mask.any() else np.zeros(3)
    use = mask.reshape(-1) & (np.abs(vals - med).max(1) < 30)
    if use.sum() < 12:
        return np.broadcast_to(np.median(vals, 0), img.shape).astype(F32)
    fit = None
    for _ in range(iters):
        coef, *_ = np.linalg.lstsq(A[use], vals[use], rcond=None)
        fit = A @ coef
        res = np.abs(vals - fit).max(1)
        mad = np.median(res[use]) * 1.4826 + 1.0
        new = mask.reshape(-1) & (res < max(3 * mad, 8.0))
        if new.sum() < 12 or (new == use).all():
            break
        use = new
    return fit.reshape(img.shape).astype(F32)


def estimate_background(frames: np.ndarray) -> Background:
    """The static background: temporal median where it agrees with a smooth region model, the model elsewhere."""
    M = np.median(frames, axis=0).astype(F32)
    H, W = M.shape[:2]
    s = min(H, W) / 64.0
    lum = M.mean(2)
    centre = np.median(lum[H // 4: 3 * H // 4, W // 4: 3 * W // 4])
    ring = max(1, int(round(1.5 * s)))
    top_dark = lum[:ring].mean() < 0.7 * centre and lum[:, :ring].mean() < 0.7 * centre \
        and lum[:, -ring:].mean() < 0.7 * centre
    yy, xx = np.mgrid[0:H, 0:W]
    view, floor_y, rim = "plain", None, 0
    coord = None  # per-pixel profile coordinate across the region boundary
    if top_dark:
        view = "top"
        coord = np.minimum(np.minimum(xx, W - 1 - xx), np.minimum(yy, H - 1 - yy))
        ring_lum = np.array([np.median(lum[coord == k]) for k in range(min(H, W) // 4)])
        rim = int(np.argmax(ring_lum > 0.75 * centre)) if (ring_lum > 0.75 * centre).any() else 0
        region = coord < rim
    else:
        rowmed = np.median(M, axis=1)
        jump = np.linalg.norm(np.diff(rowmed, axis=0), axis=1)
        lo = H // 2
        j = lo + int(np.argmax(jump[lo:]))
        if jump[j] > 25 and rowmed[j + 1:].mean() < rowmed[:j + 1].mean():
            view, floor_y = "side", float(j + 1)
            coord = yy
            region = yy >= j + 1
        else:
            region = np.zeros((H, W), bool)
    if coord is None:
        model = _poly_fit(M, np.ones((H, W), bool))
    else:
        edge = ndimage.binary_dilation(region, iterations=1) & ~ndimage.binary_erosion(region, iterations=1)
        f0 = _poly_fit(M, ~region & ~edge)
        f1 = _poly_fit(M, region & ~edge)
        # blend factor per profile coordinate (exactly 0 or 1 away from the boundary; a row median is
        # robust to objects standing on it)
        diff = f1 - f0
        proj = ((M - f0) * diff).sum(2) / np.maximum((diff * diff).sum(2), 1e-3)
        a = np.zeros(int(coord.max()) + 1, F32)
        for k in range(len(a)):
            sel = coord == k
            a[k] = np.clip(np.median(proj[sel]), 0, 1)
        a = np.where(np.abs(a - np.round(a)) < 0.08, np.round(a), a)
        model = f0 + a[coord][..., None] * diff
    # per pixel, the median of the half of the frames closest to the surface: a state that holds for half
    # the clip (a lamp's glow, a candle's smoke) stays out of the background
    far = np.abs(frames.astype(F32) - model).max(-1)
    keep = np.argsort(far, axis=0)[: (len(frames) + 1) // 2]
    M = np.median(np.take_along_axis(frames, keep[..., None], axis=0), axis=0).astype(F32)
    # the surface misses the texture; add the smoothed residual of the pixels it explains (normalised
    # convolution), which also interpolates the background behind static objects
    # (fine scale where enough explained pixels are near, coarser scales to fill big holes)
    acc = np.abs(M - model).max(2) < 20
    fill = np.zeros_like(model)
    done = np.zeros(acc.shape, bool)
    for sigma in (3.0, 8.0, 20.0):
        w = ndimage.gaussian_filter(acc.astype(F32), sigma * s)
        res = np.stack([ndimage.gaussian_filter(np.where(acc, M[..., c] - model[..., c], 0), sigma * s)
                        for c in range(3)], -1) / np.maximum(w, 1e-6)[..., None]
        use = ~done & (w > 0.25)
        fill[use] = res[use]
        done |= use
    model = model + fill
    bg = np.where((np.abs(M - model).max(2) < 14)[..., None], M, model)
    return Background(bg.astype(F32), view, floor_y, rim)


# ----------------------------------------------------------------------------------------------
# segmentation and description


@dataclass
class Detection:
    t: int
    x: float
    y: float
    area: float  # soft area, px^2
    w: float  # widest row / tallest column of soft coverage, px
    h: float
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (inclusive)
    colour: str
    fill: float
    asym: float  # (centroid - bbox middle) / height: 1/6 for an upward triangle
    rgb: tuple[float, float, float]
    cls: str = "?"
    border: bool = False  # touches the frame border (partly outside)
    partial: bool = False  # border, or against an occluder: shape features unreliable
    state: dict = field(default_factory=dict)


def segment(frames: np.ndarray, bg: Background, fg_thresh: float = 16.0):
    """Component map [T, H, W] (0 = background; ids unique over the clip), coverage [T, H, W], distance from
    the background [T, H, W], and each component's colour name."""
    f = frames.astype(F32)
    delta = f - bg.image
    dist = np.sqrt((delta * delta).sum(-1))
    fg = dist > fg_thresh
    # strong pixels: at least 3/4 of the local contrast, i.e. mostly covered by one object
    strong = fg & (dist >= 0.75 * ndimage.maximum_filter(dist, size=(1, 3, 3)))
    name = np.zeros(dist.shape, np.int64)
    name[strong] = nearest_name(f[strong])
    # edges take the name of the nearest strong pixel of the same frame (if within 2 px)
    far, idx = ndimage.distance_transform_edt(~strong, sampling=(1000.0, 1.0, 1.0), return_indices=True)
    spread = name[idx[0], idx[1], idx[2]]
    lab = np.where(fg & (far <= 2.0), spread, 0)
    # majority filter: stray pixels (shading highlights, blends) join the object around them
    K = len(NAMES) + 1
    onehot = (lab[..., None] == np.arange(1, K)).astype(F32)
    votes = ndimage.uniform_filter(onehot, size=(1, 3, 3, 1), mode="constant")
    lab = np.where(lab > 0, np.argmax(votes, -1) + 1, 0)
    # colours that blur into each other (a lit lamp and a yellow ball, a flame and an orange one; H.264
    # halves the chroma resolution): within one foreground blob the majority name wins
    blobs, nb = ndimage.label(fg, structure=np.pad(np.ones((1, 3, 3), bool), ((1, 1), (0, 0), (0, 0))))
    if nb:
        counts = np.bincount(blobs[lab > 0] * K + lab[lab > 0], minlength=(nb + 1) * K).reshape(nb + 1, K)
        for group in (("lit", "yellow"), ("flame", "orange"), ("flame", "yellow")):
            ids = [NAMES.index(g) + 1 for g in group]
            win = np.asarray(ids)[np.argmax(counts[:, ids], 1)]  # per blob
            m = np.isin(lab, ids)
            lab[m] = win[blobs[m]]
    # cords and wicks (runs at most 2 px wide of gray or black) are cut off so that a lamp is a disc
    dark = np.isin(lab, [NAMES.index("gray") + 1, NAMES.index("black") + 1])
    pad = np.pad(dark, ((0, 0), (0, 0), (2, 2)))
    W = dark.shape[2]
    sh = lambda k: pad[:, :, 2 + k: 2 + k + W]  # the neighbour k columns away (False outside the frame)
    wide = (sh(1) & sh(-1)) | (sh(-1) & sh(-2)) | (sh(1) & sh(2))
    lab = np.where(dark & ~wide & (lab == NAMES.index("gray") + 1), 0, lab)
    # white that moves is a puff of air; white that stays (matches the temporal median) is a candle, so a
    # puff passing in front of a candle does not swallow it
    moving = np.abs(f - np.median(f, axis=0)).max(-1) > 20
    white = lab == NAMES.index("white") + 1
    lab = np.where(white & moving, NAMES.index("puff") + 1, lab)
    comp = np.zeros(lab.shape, np.int32)
    st = np.zeros((3, 3, 3), bool)
    st[1] = True  # connectivity within a frame only (8-connected)
    n = 0
    names: list[str] = []
    for k in np.unique(lab[lab > 0]):
        c, m = ndimage.label(lab == k, structure=st)
        comp[c > 0] = c[c > 0] + n
        n += m
        names += [NAMES[k - 1]] * m
    # coverage: unmix each pixel between the background and its component's typical colour
    cov = np.zeros(dist.shape, F32)
    if n:
        ids = np.arange(1, n + 1)
        sel = comp > 0
        core = sel & strong
        obj = np.stack([ndimage.median(f[..., ch], np.where(core, comp, 0), ids) for ch in range(3)], -1)
        obj = np.nan_to_num(np.asarray(obj, F32))
        o = obj[comp[sel] - 1] - bg.image[np.nonzero(sel)[1:]]
        cov[sel] = np.clip((delta[sel] * o).sum(-1) / np.maximum((o * o).sum(-1), 1.0), 0, 1)
        # pixels inside a component are fully covered, whatever their colour (chips on a cookie, shading)
        inner = ndimage.binary_erosion(comp > 0, structure=st) & (ndimage.maximum_filter(comp, footprint=st)
                                                                 == ndimage.minimum_filter(comp, footprint=st))
        cov[inner] = 1.0
    return comp, cov, dist, names


def describe(frames: np.ndarray, comp: np.ndarray, cov: np.ndarray, names: list[str],
             min_area: float = 3.0) -> list[list[Detection]]:
    """Per-frame detections with geometry and colour (classes are assigned by `classify`)."""
    T, H, W = comp.shape
    n = int(comp.max())
    out: list[list[Detection]] = [[] for _ in range(T)]
    if n == 0:
        return out
    ids = np.arange(1, n + 1)
    area = ndimage.sum(cov, comp, ids)
    tt, yy, xx = np.indices(comp.shape)
    cy = ndimage.sum(cov * (yy + 0.5), comp, ids) / np.maximum(area, 1e-6)
    cx = ndimage.sum(cov * (xx + 0.5), comp, ids) / np.maximum(area, 1e-6)
    sel = comp > 0
    cid = comp[sel] - 1
    rows = np.bincount(cid * H + yy[sel], weights=cov[sel], minlength=n * H).reshape(n, H)
    cols = np.bincount(cid * W + xx[sel], weights=cov[sel], minlength=n * W).reshape(n, W)
    wmax, hmax = rows.max(1), cols.max(1)
    rgb = np.stack([ndimage.mean(frames[..., ch].astype(F32), comp, ids) for ch in range(3)], -1)
    boxes = ndimage.find_objects(comp)
    for i in range(n):
        if area[i] < min_area or boxes[i] is None:
            continue
        bt, by, bx = boxes[i]
        t = bt.start
        x0, x1, y0, y1 = bx.start, bx.stop - 1, by.start, by.stop - 1
        hh = max(hmax[i], 1e-3)
        d = Detection(t, float(cx[i]), float(cy[i]), float(area[i]), float(wmax[i]), float(hmax[i]),
                      (x0, y0, x1, y1), names[i], float(area[i] / max(wmax[i] * hmax[i], 1e-3)),
                      float((cy[i] - (y0 + y1 + 1) / 2) / hh), tuple(float(v) for v in rgb[i]))
        d.border = x0 <= 0 or y0 <= 0 or x1 >= W - 1 or y1 >= H - 1
        out[t].append(d)
    return out


def _near(a: Detection, b: Detection, gap: float) -> bool:
    """Bounding boxes within `gap` px of each other."""
    ax0, ay0, ax1, ay1 = a.bbox
    bx0, by0, bx1, by1 = b.bbox
    return ax0 - gap <= bx1 and bx0 - gap <= ax1 and ay0 - gap <= by1 and by0 - gap <= ay1


def classify(dets: list[Detection], H: int, W: int, bg: Background) -> list[Detection]:
    """Assign class and state to one frame's detections (shape features plus context for props)."""
    s = min(H, W) / 64.0
    floor = bg.floor_y if bg.floor_y is not None else H
    for d in dets:
        asp = max(d.w, d.h) / max(min(d.w, d.h), 1e-3)
        on_floor = d.bbox[3] >= floor - 1.5
        c = d.colour
        if c == "black":
            d.cls = "detail"
        elif c == "flame":
            d.cls = "flame"
        elif c == "lit":
            d.cls = "lamp"
        elif c == "gray":
            if np.mean(d.rgb) > 135:  # light gray: smoke (a blend with the background), never solid
                d.cls = "smoke"
            elif d.h > 1.6 * d.w and d.fill > 0.75 and d.area > 40 * s * s:
                d.cls = "wall"
            elif asp < 1.35 and 0.6 < d.fill < 0.92 and d.y < 0.5 * H and not on_floor and d.area > 20 * s * s:
                d.cls = "lamp"
            else:
                d.cls = "smoke"
        elif c == "puff":
            d.cls = "puff"
        elif c == "white":
            # (standing on the floor: its bottom row may blur into the floor's colour)
            d.cls = "candle" if (d.h > 1.3 * d.w and d.fill > 0.75 and d.bbox[3] >= floor - 1.5 - s) else "puff"
        elif c == "brown":
            # a cookie is a disc (a bite shortens it by a quarter at most); thin runs along the table's rim
            # and ragged blends at the edges of orange objects turn brown after compression
            d.cls = "cookie" if d.area > 40 * s * s and asp < 1.6 and d.fill > 0.65 else "detail"
        elif c == "pink":
            # (pink slivers a few px in size are blends at the edges of red or orange objects)
            d.cls = "mouth" if d.area > 12 * s * s else "detail"
        else:  # a palette colour
            edge = d.bbox[0] <= 3 * s or d.bbox[2] >= W - 1 - 3 * s
            # a switch hangs on the side wall, its soft bottom 2 px above the floor (the bounding box may
            # smear down to it); a body at the border stands on the floor
            if edge and c in ("red", "green") and d.h > 1.4 * d.w and d.area < 60 * s * s \
                    and d.y + d.h / 2 < floor - s and d.fill > 0.7:
                d.cls = "switch"
            elif asp > 1.55 and d.fill > 0.7:
                d.cls = "block"
            elif d.asym > 0.1 and d.fill < 0.8:
                d.cls = "triangle"
            elif d.fill > 0.9:
                d.cls = "square"
            elif d.fill > 0.66 and abs(d.asym) < 0.09:
                d.cls = "ball"
            elif d.asym > 0.07:
                d.cls = "triangle"
            else:
                d.cls = "ball" if d.fill > 0.7 else ("triangle" if d.fill < 0.62 or d.asym > 0.03 else "ball")
    # context: flames sit on candles; a round yellow thing hanging from a cord is a lamp
    candles = [d for d in dets if d.cls == "candle"]
    cords = [d for d in dets if d.cls == "detail" and d.bbox[1] <= 1 and (d.bbox[3] - d.bbox[1]) > 2 * (d.bbox[2] - d.bbox[0] + 1)]
    for d in dets:
        for cd in candles:
            top = cd.bbox[1]
            if d.cls in ("flame", "ball", "triangle", "square", "block", "detail", "lamp") \
                    and d.colour in ("flame", "orange", "yellow", "lit") \
                    and abs(d.x - cd.x) < cd.w / 2 + 3 * s and top - 11 * s < d.y < top + 1 and d.area < 30 * s * s:
                d.cls = "flame"
        if d.cls in ("ball",) and d.colour == "yellow" and any(abs(cd.x - d.x) < 2 * s and abs(cd.bbox[3] - d.bbox[1]) <= 3 for cd in cords):
            d.cls = "lamp"
    for d in dets:
        if d.cls == "candle":
            d.state["lit"] = any(f.cls == "flame" and abs(f.x - d.x) < d.w / 2 + 3 * s
                                 and d.bbox[1] - 11 * s < f.y < d.bbox[1] + 1 for f in dets)
        elif d.cls == "lamp":
            d.state["lit"] = bool(np.mean(d.rgb) > 150 and d.colour != "gray")
        elif d.cls == "cookie":
            # a bite shortens one extent (aspect deficit) and removes area (the soft area of a whole disc
            # reads 1-4% under pi r^2 from its extents, hence the offset)
            r = max(d.w, d.h) / 2
            d.state["notch"] = float(max(1 - min(d.w, d.h) / max(d.w, d.h, 1e-3), 1 - d.area / (np.pi * r * r) - 0.05, 0.0))
        elif d.cls == "block":
            d.state["down"] = bool(d.w > 1.3 * d.h)
            d.state["upright"] = bool(d.h > 1.3 * d.w)
        elif d.cls == "switch":
            d.state["pressed"] = d.colour == "green"
    walls = [d for d in dets if d.cls == "wall"]
    for d in dets:
        d.partial = d.border or any(_near(d, wd, 1.0) for wd in walls if wd is not d)
    return dets


def _merge_split(dets: list[Detection], H: int, W: int) -> list[Detection]:
    """One object seen on both sides of a wall (or cut by a thin blend line) is one detection."""
    walls = [d for d in dets if d.cls == "wall"]
    out: list[Detection] = []
    used = set()
    for i, a in enumerate(dets):
        if i in used:
            continue
        for j in range(i + 1, len(dets)):
            b = dets[j]
            if j in used or b.colour != a.colour or a.cls in ("wall", "detail") or b.cls in ("wall", "detail"):
                continue
            if any(_near(a, w, 1.0) and _near(b, w, 1.0) for w in walls) or _near(a, b, 0.0):
                tot = a.area + b.area
                bb = (min(a.bbox[0], b.bbox[0]), min(a.bbox[1], b.bbox[1]), max(a.bbox[2], b.bbox[2]), max(a.bbox[3], b.bbox[3]))
                a = Detection(a.t, (a.x * a.area + b.x * b.area) / tot, (a.y * a.area + b.y * b.area) / tot, tot,
                              a.w + b.w, max(a.h, b.h), bb, a.colour, a.fill, a.asym, a.rgb,
                              a.cls if a.area >= b.area else b.cls, a.border or b.border, True, dict(a.state or b.state))
                used.add(j)
        out.append(a)
    return out


# ----------------------------------------------------------------------------------------------
# tracking


@dataclass
class ObjTrack:
    """One object through the clip; per-frame arrays hold NaN / None where it is not seen."""

    id: int
    dets: dict[int, Detection] = field(default_factory=dict)
    cls: str = "?"
    colour: str = "?"

    def frames(self) -> np.ndarray:
        return np.asarray(sorted(self.dets), int)

    def series(self, T: int, key: str) -> np.ndarray:
        v = np.full(T, np.nan)
        for t, d in self.dets.items():
            v[t] = getattr(d, key) if hasattr(d, key) else d.state.get(key, np.nan)
        return v

    def pos(self, T: int) -> np.ndarray:
        return np.stack([self.series(T, "x"), self.series(T, "y")], 1)

    @property
    def first(self) -> int:
        return min(self.dets)

    @property
    def last(self) -> int:
        return max(self.dets)

    @property
    def size(self) -> float:
        return float(np.median([np.sqrt(d.area) for d in self.dets.values()]))


def _mode(vals: list[str]) -> str:
    if not vals:
        return "?"
    u, c = np.unique(vals, return_counts=True)
    return str(u[np.argmax(c)])


def track(dets: list[list[Detection]], H: int, W: int) -> list[ObjTrack]:
    """Link detections into tracks with the Hungarian algorithm.

    Cost: distance to the constant-velocity prediction plus penalties for a different colour or class.
    A same-coloured detection may match a track anywhere in the frame (colours are unique in a scene, so
    this keeps identity through occlusion and exposes teleports as jumps instead of new objects); a
    different colour may continue a track only a few pixels from its prediction (a colour swap in place).
    """
    s = min(H, W) / 64.0
    tracks: list[ObjTrack] = []
    state: list[dict] = []  # per track: last position, velocity, last frame
    for t, frame_dets in enumerate(dets):
        # fragments (H.264 smears of a moving edge) are too small to be objects
        D = [d for d in frame_dets if d.cls not in ("detail", "flame", "smoke") and d.area >= 8 * s * s]
        if tracks and D:
            C = np.full((len(tracks), len(D)), 1e6)
            for i, (tr, st) in enumerate(zip(tracks, state)):
                gap = t - st["t"]
                if gap <= 0:
                    continue
                px, py = st["p"] + st["v"] * min(gap, 4)
                for j, d in enumerate(D):
                    dist = min(np.hypot(d.x - px, d.y - py), np.hypot(d.x - st["p"][0], d.y - st["p"][1]) + 2 * s)
                    same_c = d.colour == tr.colour
                    eph = (d.cls in EPHEMERAL) != (tr.cls in EPHEMERAL)
                    if eph:
                        continue
                    if same_c:
                        C[i, j] = dist / s + 2 * (gap - 1) + (6 if d.cls != tr.cls else 0)
                    elif dist < 7 * s and gap <= 2 and 0.4 < d.area / max(st["area"], 1e-3) < 2.5:
                        C[i, j] = dist / s + 40
            r, c = linear_sum_assignment(C)
            pairs = [(i, j) for i, j in zip(r, c) if C[i, j] < 1e5]
        else:
            pairs = []
        matched = set()
        for i, j in pairs:
            d, tr, st = D[j], tracks[i], state[i]
            gap = t - st["t"]
            v = (np.array([d.x, d.y]) - st["p"]) / gap
            st.update(v=v if not (d.partial or tr.dets[st["t"]].partial) else st["v"], p=np.array([d.x, d.y]),
                      t=t, area=d.area)
            tr.dets[t] = d
            matched.add(j)
        for j, d in enumerate(D):
            if j not in matched:
                tracks.append(ObjTrack(len(tracks), {t: d}, d.cls, d.colour))
                state.append({"p": np.array([d.x, d.y]), "v": np.zeros(2), "t": t, "area": d.area})
        for tr in tracks:  # running identity: used by the next frame's costs
            seen = list(tr.dets.values())
            tr.colour = _mode([d.colour for d in seen[-5:]])
            good = [d.cls for d in seen if not d.partial] or [d.cls for d in seen]
            tr.cls = _mode(good[-5:])
    for tr in tracks:  # final identity over the whole track
        seen = list(tr.dets.values())
        tr.colour = _mode([d.colour for d in seen])
        tr.cls = _mode([d.cls for d in seen if not d.partial] or [d.cls for d in seen])
    return tracks


# ----------------------------------------------------------------------------------------------


@dataclass
class Perception:
    """Everything perception found in one clip."""

    shape: tuple[int, int, int]  # T, H, W
    fps: float
    background: Background
    detections: list[list[Detection]]
    tracks: list[ObjTrack]
    dist: np.ndarray | None = None  # [T, H, W] distance from the background (for flicker)

    @property
    def scale(self) -> float:
        return min(self.shape[1:]) / 64.0

    def solid_tracks(self) -> list[ObjTrack]:
        return [t for t in self.tracks if t.cls not in EPHEMERAL]

    def occluders(self) -> list[Detection]:
        return [d for ds in self.detections for d in ds if d.cls == "wall"]

    def by_class(self, cls: str) -> list[ObjTrack]:
        return [t for t in self.tracks if t.cls == cls]


def perceive(frames: np.ndarray, fps: float = 8.0) -> Perception:
    """Detect, describe, classify and track the objects of a clip [T, H, W, 3] uint8."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3], got {list(frames.shape)}")
    T, H, W = frames.shape[:3]
    bg = estimate_background(frames)
    comp, cov, dist, names = segment(frames, bg)
    dets = describe(frames, comp, cov, names)
    dets = [_merge_split(classify(ds, H, W, bg), H, W) for ds in dets]
    dets = [classify(ds, H, W, bg) if any(d.partial for d in ds) else ds for ds in dets]
    tracks = track(dets, H, W)
    return Perception((T, H, W), fps, bg, dets, tracks, dist)


# ----------------------------------------------------------------------------------------------
# validation against the world's truth


def match_truth(p: Perception, truth: dict, max_dist: float = 4.0, min_vis: float = 0.5) -> dict:
    """Compare perception with a clip's truth: position error, identity switches, colour and class accuracy.

    A truth object is matched, frame by frame, to the nearest detected track within `max_dist` px (scaled)
    where it is at least `min_vis` visible; its track is the one it matches most often.
    """
    T, H, W = p.shape
    s = p.scale
    pos = {tr.id: tr.pos(T) for tr in p.tracks}
    errs, switches, n_tracks, n_colour, colour_ok, cls_ok, n_cls, missed, n_obs = [], 0, 0, 0, 0, 0, 0, 0, 0
    for o in truth["objects"]:
        if o["class"] == "puff":
            continue
        x, y, vis = np.asarray(o["x"]), np.asarray(o["y"]), np.asarray(o["visible"])
        ids = []
        for t in range(T):
            if vis[t] < min_vis:
                continue
            n_obs += 1
            best, bid = max_dist * s, None
            for tid, pp in pos.items():
                if not np.isnan(pp[t, 0]):
                    dd = np.hypot(pp[t, 0] - x[t], pp[t, 1] - y[t])
                    if dd < best:
                        best, bid = dd, tid
            if bid is None:
                missed += 1
                continue
            ids.append(bid)
            if vis[t] > 0.95 and not p.tracks[bid].dets[t].border:
                errs.append(best)
        if not ids:
            continue
        n_tracks += 1
        switches += int(np.sum(np.diff(ids) != 0))
        main = p.tracks[int(np.bincount(ids).argmax())]
        if o["class"] in SHAPE_CLASSES + ("block",):
            n_colour += 1
            colour_ok += main.colour == o["colour"]
        want = "lamp" if o["class"] == "lamp" else o["class"]
        n_cls += 1
        cls_ok += main.cls == want
    return {"pos_errors": errs, "switches": switches, "n_tracks": n_tracks, "colour_ok": colour_ok,
            "n_colour": n_colour, "cls_ok": cls_ok,
            "n_cls": n_cls, "missed": missed, "n_obs": n_obs}
