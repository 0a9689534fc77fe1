namespace Amber.Image;

/// <summary>
/// The type of an image file, stored as a 4-character tag after the magic so that a file of one
/// kind is never parsed as another.
/// </summary>
public enum ImageFileKind
{
    /// <summary>"MNFT": the checkpoint manifest.</summary>
    Manifest,

    /// <summary>"PROC": a process image.</summary>
    Process,

    /// <summary>"META": any other metadata message.</summary>
    Metadata,

    /// <summary>"PAGE": a page file; not a message, written with <see cref="PageFileWriter"/>.</summary>
    Pages,
}
