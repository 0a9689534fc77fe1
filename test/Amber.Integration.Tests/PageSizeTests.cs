using Amber.Image;
using Amber.Kernel.Memory;

namespace Amber.Integration.Tests;

public sealed class PageSizeTests
{
    /// <summary>A page of the image format holds one page of memory (ImageFormat.PageSize says why they are two constants).</summary>
    [Fact]
    public void ImagePageIsMachinePage() => Assert.Equal(Page.Size, ImageFormat.PageSize);
}
