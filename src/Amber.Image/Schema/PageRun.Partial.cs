namespace Amber.Image.Schema;

public sealed partial class PageRun
{
    /// <summary>The page file that holds this run's pages.</summary>
    public PageFileRef StoredIn => new(Source, Layer);

    /// <summary>Its block is encrypted (<see cref="Nonce"/> and <see cref="Tag"/>).</summary>
    public bool Encrypted => !Nonce.IsEmpty;

    /// <summary>
    /// Stored as a block (compressed, encrypted or both) that is read whole and sliced at
    /// <see cref="Skip"/>, rather than as the pages themselves at <see cref="FileOffset"/>.
    /// </summary>
    public bool IsBlock => Codec != Codec.None || Encrypted;
}
