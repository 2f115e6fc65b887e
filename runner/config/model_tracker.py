"""NvMultiObjectTracker low-level config (the YAML an app's ``[tracker] ll-config-file`` names).

Sections and keys keep NvMultiObjectTracker's camelCase spelling. Defaults come from the tracker
reference (NVIDIA/DeepStream skills/deepstream-dev/references/tracker_config.md: minDetectorConfidence 0,
checkClassMatch true, matchingScoreWeight4Iou 1.0, tentativeDetectorConfidence 0.5,
thresholdMahalanobis -1); where it gives none the library's zero value is used.

>>> NvMultiObjectTrackerConfig().DataAssociator.matchingScoreWeight4Iou
1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.config.fields import derived, key


@dataclass(frozen=True, slots=True)
class BaseConfig:
    minDetectorConfidence: float = key(0.0, lo=0)
    checkClassMatch: bool = key(True, doc="read by some releases here, by DataAssociator in others")


@dataclass(frozen=True, slots=True)
class TargetManagement:
    maxTargetsPerStream: int = key(150, lo=1, doc="NvMultiObjectTracker sample value; pre-allocates")
    preserveStreamUpdateOrder: bool = key(False)
    enableBboxUnClipping: bool = key(False)
    minIouDiff4NewTarget: float = key(0.0, lo=0, hi=1)
    minTrackerConfidence: float = key(0.0, lo=0, hi=1)
    probationAge: int = key(0, lo=0)
    maxShadowTrackingAge: int = key(0, lo=0)
    earlyTerminationAge: int = key(0, lo=0)
    searchRegionPaddingScale: float = key(1.0, lo=0)
    outputTerminatedTracks: bool = key(False)
    outputShadowTracks: bool = key(False)
    terminatedTrackFilename: str | None = key(None)
    maxTrajectoryBufferLength: int = key(-1)


@dataclass(frozen=True, slots=True)
class TrajectoryManagement:
    useUniqueID: bool = key(False)
    enableReAssoc: bool = key(False)
    minMatchingScore4Overall: float = key(0.0)
    minTrackletMatchingScore: float = key(0.0)
    minMatchingScore4ReidSimilarity: float = key(0.0)
    matchingScoreWeight4TrackletSimilarity: float = key(0.0)
    matchingScoreWeight4ReidSimilarity: float = key(0.0)
    minTrajectoryLength4Projection: int = key(0)
    prepLength4TrajectoryProjection: int = key(0)
    trajectoryProjectionLength: int = key(0)
    maxAngle4TrackletMatching: float = key(0.0)
    minSpeedSimilarity4TrackletMatching: float = key(0.0)
    minBboxSizeSimilarity4TrackletMatching: float = key(0.0)
    maxTrackletMatchingTimeSearchRange: int = key(0)
    trajectoryProjectionProcessNoiseScale: float = key(0.0)
    trajectoryProjectionMeasurementNoiseScale: float = key(0.0)
    trackletSpacialSearchRegionScale: float = key(0.0)
    reidExtractionInterval: int = key(0, lo=-1)


@dataclass(frozen=True, slots=True)
class DataAssociator:
    dataAssociatorType: int = key(0, lo=0)
    associationMatcherType: int = key(0, lo=0, hi=1, doc="0 greedy, 1 cascaded")
    checkClassMatch: bool = key(True)
    usePrediction4Assoc: bool = key(False)
    minMatchingScore4Overall: float = key(0.0)
    minMatchingScore4SizeSimilarity: float = key(0.0)
    minMatchingScore4Iou: float = key(0.0)
    minMatchingScore4VisualSimilarity: float = key(0.0)
    minMatchingScore4ReidSimilarity: float = key(0.0)
    minMatchingScore4PeerAssocIou: float = key(0.0)
    matchingScoreWeight4Iou: float = key(1.0)
    matchingScoreWeight4SizeSimilarity: float = key(0.0)
    matchingScoreWeight4VisualSimilarity: float = key(0.0)
    matchingScoreWeight4ReidSimilarity: float = key(0.0)
    tentativeDetectorConfidence: float = key(0.5)
    minMatchingScore4TentativeIou: float = key(0.0)
    thresholdMahalanobis: float = key(-1.0)


@dataclass(frozen=True, slots=True)
class StateEstimator:
    stateEstimatorType: int = key(0, lo=0, hi=3, doc="0 dummy, 1 simple bbox KF, 2 regular bbox KF, "
                                                      "3 simple location KF")
    processNoiseVar4Loc: float = key(0.0)
    processNoiseVar4Size: float = key(0.0)
    processNoiseVar4Vel: float = key(0.0)
    measurementNoiseVar4Detector: float = key(0.0)
    measurementNoiseVar4Tracker: float = key(0.0)
    noiseWeightVar4Loc: float = key(0.0)
    noiseWeightVar4Vel: float = key(0.0)
    useAspectRatio: bool = key(False)


@dataclass(frozen=True, slots=True)
class VisualTracker:
    visualTrackerType: int = key(0, lo=0, hi=2, doc="0 dummy, 1 NvDCF legacy, 2 NvDCF VPI")
    useColorNames: bool = key(False)
    useHog: bool = key(False)
    useHighPrecisionFeature: bool = key(False)
    featureImgSizeLevel: int = key(2, lo=1, hi=5)
    featureFocusOffsetFactor_y: float = key(0.0, lo=-0.5, hi=0.5, name="featureFocusOffsetFactor_y")
    filterLr: float = key(0.0, lo=0, hi=1)
    filterChannelWeightsLr: float = key(0.0, lo=0, hi=1)
    gaussianSigma: float = key(0.0, lo=0)
    vpiBackend4DcfTracker: int = key(1, lo=1, hi=2)


@dataclass(frozen=True, slots=True)
class ReID:
    reidType: int = key(0, lo=0, hi=3)
    batchSize: int = key(1, lo=1)
    workspaceSize: int = key(0, lo=0)
    reidFeatureSize: int = key(0, lo=0)
    reidHistorySize: int = key(0, lo=0)
    inferDims: tuple[int, ...] = key((), length=3)
    networkMode: int = key(0, lo=0, hi=2)
    inputOrder: int = key(0, lo=0, hi=1)
    colorFormat: int = key(0, lo=0, hi=1)
    offsets: tuple[float, ...] = key(())
    netScaleFactor: float = key(1.0)
    keepAspc: bool = key(False)
    useVPICropScaler: bool = key(False)
    addFeatureNormalization: bool = key(False)
    minVisibility4GalleryUpdate: float = key(0.0)
    outputReidTensor: bool = key(False)
    tltEncodedModel: Path | None = key(None, path="asset")
    tltModelKey: str | None = key(None)
    onnxFile: Path | None = key(None, path="asset")
    modelEngineFile: Path | None = key(None, path="asset")
    calibrationTableFile: Path | None = key(None, path="asset")


@dataclass(frozen=True, slots=True)
class MultiViewAssociator:
    multiViewAssociatorType: int = key(0, lo=0)
    communicatorInitSleepTime: int = key(0, lo=0)
    enableIDCorrection: bool = key(False)
    enableLatePeerReAssoc: bool = key(False)
    enableMsgSync: bool = key(False)
    enableSeeThrough: bool = key(False)
    maxPeerFrameDiff4NoDet: int = key(0)
    maxPeerToPredDistance4Fusion: float = key(0.0)
    minPeerToPredDistance4Fusion: float = key(0.0)
    maxPeerTrackletSize: int = key(0)
    maxTrackletMatchingTimeSearchRange: int = key(0)
    minCommonFrames4MatchScore: int = key(0)
    minPeerTrackletMatchScore: float = key(0.0)
    minPeerVisibility4Fusion: float = key(0.0)
    recentlyActiveAge: int = key(0)


@dataclass(frozen=True, slots=True)
class ObjectModelProjection:
    objectModelType: int = key(0, lo=0)
    cameraModelFilepath: tuple[Path, ...] = key((), path="asset")
    minPoseConfidence: float = key(0.0)
    outputConvexHull: bool = key(False)
    outputFootLocation: bool = key(False)
    outputVisibility: bool = key(False)


@dataclass(frozen=True, slots=True)
class PoseEstimator:
    poseEstimatorType: int = key(0, lo=0)
    poseInferenceInterval: int = key(0, lo=-1)
    batchSize: int = key(1, lo=1)
    workspaceSize: int = key(0, lo=0)
    inferDims: tuple[int, ...] = key((), length=3)
    networkMode: int = key(0, lo=0, hi=2)
    inputOrder: int = key(0, lo=0, hi=1)
    colorFormat: int = key(0, lo=0, hi=1)
    offsets: tuple[float, ...] = key(())
    netScaleFactor: float = key(1.0)
    useVPICropScaler: bool = key(False)
    onnxFile: Path | None = key(None, path="asset")
    modelEngineFile: Path | None = key(None, path="asset")


@dataclass(frozen=True, slots=True)
class Communicator:
    communicatorType: int = key(0, lo=0)
    mqttProtoAdaptorConfigPath: Path | None = key(None, path="asset")
    pubSubInfoConfigPath: Path | None = key(None, path="asset")


@dataclass(frozen=True, slots=True)
class NvDCF:
    """The pre-6.0 single-section NvDCF format (still met in old configs)."""
    SearchRegionPaddingScale: float = key(1.0)
    earlyTerminationAge: int = key(0)
    featureImgSizeLevel: int = key(2, lo=1, hi=5)
    filterLr: float = key(0.0)
    gaussianSigma: float = key(0.0)
    maxShadowTrackingAge: int = key(0)
    maxTargetsPerStream: int = key(150)
    minDetectorConfidence: float = key(0.0)
    minTrackerConfidence: float = key(0.0)
    minVisibiilty4Tracking: float = key(0.0)
    probationAge: int = key(0)


@dataclass(frozen=True, slots=True)
class NvMultiObjectTrackerConfig:
    """A whole NvMultiObjectTracker YAML file; a section that is absent holds its defaults."""
    BaseConfig: BaseConfig = derived(BaseConfig())
    TargetManagement: TargetManagement = derived(TargetManagement())
    TrajectoryManagement: TrajectoryManagement | None = derived(None)
    DataAssociator: DataAssociator = derived(DataAssociator())
    StateEstimator: StateEstimator = derived(StateEstimator())
    VisualTracker: VisualTracker | None = derived(None)
    ReID: ReID | None = derived(None)
    MultiViewAssociator: MultiViewAssociator | None = derived(None)
    ObjectModelProjection: ObjectModelProjection | None = derived(None)
    PoseEstimator: PoseEstimator | None = derived(None)
    Communicator: Communicator | None = derived(None)
    NvDCF: NvDCF | None = derived(None)
    path: Path | None = derived(None)


#: section name → dataclass (the loader's and the schema script's table)
TRACKER_SECTIONS: dict[str, type] = {
    name: cls for name, cls in [("BaseConfig", BaseConfig), ("TargetManagement", TargetManagement),
                                ("TrajectoryManagement", TrajectoryManagement),
                                ("DataAssociator", DataAssociator), ("StateEstimator", StateEstimator),
                                ("VisualTracker", VisualTracker), ("ReID", ReID),
                                ("MultiViewAssociator", MultiViewAssociator),
                                ("ObjectModelProjection", ObjectModelProjection),
                                ("PoseEstimator", PoseEstimator), ("Communicator", Communicator),
                                ("NvDCF", NvDCF)]}
