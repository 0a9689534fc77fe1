namespace Amber.Image;

/// <summary>
/// An encrypted checkpoint was to be read without its key, or with another one. The message is one
/// line naming the checkpoint and the key ids.
/// </summary>
public sealed class ImageKeyException : Exception
{
    /// <param name="message">One line: the checkpoint, the key it needs, the key given.</param>
    public ImageKeyException(string message)
        : base(message)
    {
    }
}
