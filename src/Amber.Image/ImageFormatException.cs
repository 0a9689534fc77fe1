namespace Amber.Image;

/// <summary>
/// An image is corrupt, truncated, foreign or of an incompatible version. The message is one line
/// naming the file and what is wrong with it.
/// </summary>
public sealed class ImageFormatException : Exception
{
    /// <param name="message">One line: the path, and what is wrong.</param>
    public ImageFormatException(string message)
        : base(message)
    {
    }

    /// <param name="message">One line: the path, and what is wrong.</param>
    /// <param name="innerException">What failed underneath.</param>
    public ImageFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
