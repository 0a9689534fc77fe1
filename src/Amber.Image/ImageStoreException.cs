namespace Amber.Image;

/// <summary>
/// Reading or writing an image failed for a reason outside the image itself: an I/O error, a full
/// disk, a permission, or a target directory that is not empty. The message is one line naming
/// the path and the reason.
/// </summary>
public sealed class ImageStoreException : Exception
{
    /// <param name="message">One line: the path, and what is wrong.</param>
    public ImageStoreException(string message)
        : base(message)
    {
    }

    /// <param name="message">One line: the path, and what is wrong.</param>
    /// <param name="innerException">What failed underneath.</param>
    public ImageStoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
