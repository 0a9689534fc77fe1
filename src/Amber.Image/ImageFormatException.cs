namespace Amber.Image;

/// <summary>
/// An image is corrupt, truncated, foreign or of an incompatible version. The message is one line
/// naming the file and what is wrong with it.
/// </summary>
public sealed class ImageFormatException : Exception
{
    public ImageFormatException(string message)
        : base(message)
    {
    }

    public ImageFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
