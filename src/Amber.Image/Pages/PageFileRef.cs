namespace Amber.Image;

/// <summary>
/// Which page file holds a run's pages, seen from the checkpoint the run belongs to: that of
/// <see cref="Source"/> (0: this checkpoint; n: Manifest.sources[n - 1]), and of its page files,
/// its own (<see cref="Layer"/> 0) or one it took in from an earlier checkpoint (layer n).
/// </summary>
public readonly record struct PageFileRef(uint Source, uint Layer);
